package client

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/transport/wire"
)

// The metadata cache.
//
// Every MetadataResponse the client receives, whoever asked, updates the
// cache: node id -> address, and per topic each partition's leader and
// leader epoch. Producers and consumers read leaders from it; when a
// request fails in a way that says the leader moved (NOT_LEADER,
// LEADER_NOT_AVAILABLE, epoch fencing, replica shortage, timeouts, a
// dropped connection) they call requestRefresh and retry after their
// backoff. metaLoop refreshes the topics in use on request (at most once
// per RetryBackoff) and every metadataMaxAge, like Kafka's
// metadata.max.age.ms, which also lets group-less consumers and producers
// see partitions added to a topic.

// refreshTimeout bounds one metadata refresh by metaLoop.
const refreshTimeout = 2 * time.Second

// metadataMaxAge is how often the topics in use are refreshed when nothing
// asks for it (a variable for tests).
var metadataMaxAge = 30 * time.Second

type metaCache struct {
	gen atomic.Uint64 // bumped at every update; readers cache what they derived from it

	mu      sync.Mutex
	nodes   map[int32]string // node id -> address to dial
	topics  map[string]*topicMeta
	changed chan struct{} // closed (and replaced) at every update
	refresh chan struct{} // cap 1: metaLoop should refresh now
}

type topicMeta struct {
	parts []partMeta
	used  bool // refreshed by metaLoop: a producer or consumer uses it
}

type partMeta struct {
	leader int32 // -1: none right now
	epoch  int32
}

func (m *metaCache) init() {
	m.nodes = map[int32]string{}
	m.topics = map[string]*topicMeta{}
	m.changed = make(chan struct{})
	m.refresh = make(chan struct{}, 1)
}

// learn applies a metadata response received through a connection to via.
func (m *metaCache) learn(resp *wire.MetadataResponse, via string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range resp.Nodes {
		addr := n.Addrs["quic"]
		if n.NodeID == resp.NodeID && via != "" {
			// The answering node is reachable where we reached it (a seed
			// address may differ from the advertised one, and certificate
			// pins are per address).
			addr = via
		}
		if addr != "" {
			m.nodes[n.NodeID] = reachableAddr(addr, via)
		}
	}
	for _, t := range resp.Topics {
		if t.Err.Code != 0 {
			continue
		}
		tm := m.topics[t.Name]
		if tm == nil {
			tm = &topicMeta{}
			m.topics[t.Name] = tm
		}
		parts := make([]partMeta, len(t.Partitions))
		for _, p := range t.Partitions {
			if p.Partition >= 0 && int(p.Partition) < len(parts) {
				parts[p.Partition] = partMeta{leader: p.Leader, epoch: p.LeaderEpoch}
			}
		}
		tm.parts = parts
	}
	m.gen.Add(1)
	close(m.changed)
	m.changed = make(chan struct{})
}

// use marks topics as in use, so metaLoop keeps them fresh.
func (m *metaCache) use(topics ...string) {
	m.mu.Lock()
	for _, t := range topics {
		tm := m.topics[t]
		if tm == nil {
			tm = &topicMeta{}
			m.topics[t] = tm
		}
		tm.used = true
	}
	m.mu.Unlock()
}

// leader returns a partition's leader and epoch; false when the cache does
// not know the partition or it has no leader right now.
func (m *metaCache) leader(topic string, partition int32) (int32, int32, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tm := m.topics[topic]
	if tm == nil || partition < 0 || int(partition) >= len(tm.parts) {
		return -1, -1, false
	}
	p := tm.parts[partition]
	return p.leader, p.epoch, p.leader >= 0
}

// partitions returns a topic's partition count, 0 when unknown.
func (m *metaCache) partitions(topic string) int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if tm := m.topics[topic]; tm != nil {
		return int32(len(tm.parts))
	}
	return 0
}

func (m *metaCache) nodeAddr(id int32) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.nodes[id]
	return a, ok
}

func (m *metaCache) nodeAddrs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]int32, 0, len(m.nodes))
	for id := range m.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, m.nodes[id])
	}
	return out
}

// changedCh returns a channel closed at the next update.
func (m *metaCache) changedCh() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

func (m *metaCache) usedTopics() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for name, tm := range m.topics {
		if tm.used {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// requestRefresh asks metaLoop to refresh the topics in use soon.
func (c *Client) requestRefresh() {
	select {
	case c.meta.refresh <- struct{}{}:
	default:
	}
}

// metaLoop refreshes the metadata of the topics in use when asked (at
// most once per RetryBackoff) and every metadataMaxAge.
func (c *Client) metaLoop() {
	t := time.NewTicker(metadataMaxAge)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.meta.refresh:
			if wait := c.cfg.retryBackoff - time.Since(last); wait > 0 {
				select {
				case <-time.After(wait):
				case <-c.ctx.Done():
					return
				}
			}
		}
		last = time.Now()
		topics := c.meta.usedTopics()
		if len(topics) == 0 {
			continue
		}
		// A metadata answer takes milliseconds: one that does not come
		// within refreshTimeout suggests the node asked is gone (without
		// closing the connection); ask another one.
		for attempt := 0; attempt < 3; attempt++ {
			ctx, cancel := context.WithTimeout(c.ctx, min(c.cfg.requestTimeout, refreshTimeout))
			_, via, err := c.metadataVia(ctx, topics, false)
			cancel()
			if err == nil || c.ctx.Err() != nil {
				break
			}
			c.cfg.logger.Debug("metadata refresh failed", "node", via, "err", err)
			if via != "" {
				c.avoidForAny(via)
			}
		}
		if c.prod != nil {
			c.prod.poke()
		}
	}
}

// leaderMoved reports errors after which a request should go to the
// partition's leader as a fresh metadata names it.
func leaderMoved(err error) bool {
	return errors.Is(err, ErrConnection) || errors.Is(err, kerr.NotLeaderForPartition) ||
		errors.Is(err, kerr.LeaderNotAvailable) || errors.Is(err, kerr.FencedLeaderEpoch) ||
		errors.Is(err, kerr.UnknownLeaderEpoch) || errors.Is(err, kerr.NotEnoughReplicas) ||
		errors.Is(err, kerr.NotEnoughReplicasAfterAppend) || errors.Is(err, kerr.RequestTimedOut) ||
		errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.KafkaStorageError)
}
