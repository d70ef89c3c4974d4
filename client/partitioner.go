package client

import (
	"github.com/wispbus/wisp/internal/murmur2"

	"math/rand/v2"
	"sync"
)

// Partitioner picks the partition of a record. Implementations must be safe
// for concurrent use.
type Partitioner interface {
	// Partition returns a partition in [0, n) for r; n is at least 1.
	Partition(r *Record, n int32) int32
}

// batchAware is implemented by partitioners that want to know when a
// partition's batch was closed (the sticky partitioner moves on then).
type batchAware interface {
	onBatchClosed(topic string, partition int32)
}

// KafkaPartitioner is the Java producer's default: records with a key go to
// (murmur2(key) & 0x7fffffff) % n, so the same key lands on the same
// partition as with any Kafka client; records without a key stick to one
// partition until its batch is sent, then move to another (KIP-480).
func KafkaPartitioner() Partitioner { return &stickyPartitioner{cur: map[string]int32{}} }

// RoundRobinPartitioner sends records to partitions in turn, keyed or not.
func RoundRobinPartitioner() Partitioner { return &roundRobin{next: map[string]int32{}} }

// ManualPartitioner uses each record's Partition field as it is.
func ManualPartitioner() Partitioner { return manual{} }

// KeyPartition is the partition Kafka's default partitioner picks for key
// among n partitions: (murmur2(key) & 0x7fffffff) % n.
func KeyPartition(key []byte, n int32) int32 { return murmur2.Partition(key, n) }

// Murmur2 is Kafka's 32-bit murmur2 hash (org.apache.kafka.common.utils.
// Utils.murmur2).
func Murmur2(data []byte) int32 { return murmur2.Sum(data) }

type stickyPartitioner struct {
	mu  sync.Mutex
	cur map[string]int32 // topic -> sticky partition for nil keys, -1 = pick
}

func (s *stickyPartitioner) Partition(r *Record, n int32) int32 {
	if n == 1 {
		// The only choice, keyed or not; skips the hash or the lock and
		// map look-up, which showed in the profile of a one-partition
		// topic. The sticky state needs no update: with one partition
		// every pick is 0.
		return 0
	}
	if r.Key != nil {
		return KeyPartition(r.Key, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.cur[r.Topic]
	if !ok || p < 0 || p >= n {
		prev := int32(-1)
		if ok && p < 0 {
			prev = -1 - p
		}
		p = s.pickLocked(prev, n)
		s.cur[r.Topic] = p
	}
	return p
}

func (s *stickyPartitioner) pickLocked(prev, n int32) int32 {
	if n == 1 {
		return 0
	}
	p := rand.Int32N(n)
	if p == prev {
		p = (p + 1) % n
	}
	return p
}

func (s *stickyPartitioner) onBatchClosed(topic string, partition int32) {
	s.mu.Lock()
	if p, ok := s.cur[topic]; ok && p == partition {
		s.cur[topic] = -1 - p // moves on at the next record, away from p
	}
	s.mu.Unlock()
}

type roundRobin struct {
	mu   sync.Mutex
	next map[string]int32
}

func (rr *roundRobin) Partition(r *Record, n int32) int32 {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	p := rr.next[r.Topic] % n
	rr.next[r.Topic] = (p + 1) % n
	return p
}

type manual struct{}

func (manual) Partition(r *Record, n int32) int32 { return r.Partition }
