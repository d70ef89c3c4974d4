package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wispbus/wisp/internal/testnode"
)

// partitionState is one row of `wisp topic describe --format json`.
type partitionState struct {
	Partition     int32   `json:"partition"`
	Leader        int32   `json:"leader"`
	LeaderEpoch   int32   `json:"leader_epoch"`
	Replicas      []int32 `json:"replicas"`
	ISR           []int32 `json:"isr"`
	HighWatermark int64   `json:"high_watermark"`
}

// describe asks node n (through the CLI) for the partitions of topic.
func describe(t *testing.T, n *testnode.Node, topic string) ([]partitionState, error) {
	t.Helper()
	res := wisp(t, n, "", "topic", "describe", topic, "--format", "json")
	if res.code != 0 {
		return nil, fmt.Errorf("describe: %s", res)
	}
	var out struct {
		Partitions []partitionState `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		return nil, err
	}
	return out.Partitions, nil
}

// waitPartitions polls node n until cond holds for the partitions of topic.
func waitPartitions(t *testing.T, n *testnode.Node, topic, what string, cond func([]partitionState) bool) []partitionState {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ps, err := describe(t, n, topic)
		if err == nil && cond(ps) {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v (%v)", what, ps, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ackLog is what the producer was told: per partition, the values
// acknowledged, in offset order.
type ackLog struct {
	mu    sync.Mutex
	acked map[int32][]ack
	errs  int
}

type ack struct {
	value  int
	offset int64
	at     time.Time
}

// TestClusterFailover runs a producer with acks=all and idempotence against
// three real nodes (through the Kafka listener, with franz-go) while the
// leader of every partition in turn is killed with SIGKILL and restarted, a
// follower is paused past the lag limit and resumed, and a leader is
// paused until it is deposed. Afterwards every acknowledged record is there
// exactly once in order, and the replicas are identical byte for byte.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster fault test: skipped in -short")
	}
	c := testnode.StartCluster(t, 3, "--replica-lag-max", "2s", "--functions=false")
	n1 := c.Node(1)
	mustWisp(t, n1, "", "topic", "create", "orders", "-p", "3", "-r", "3")
	ps := waitPartitions(t, n1, "orders", "three in-sync replicas", func(ps []partitionState) bool {
		return len(ps) == 3 && allISR(ps, 3)
	})

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaBrokers()...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordRetries(1<<30), kgo.RequestTimeoutOverhead(2*time.Second), kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.MetadataMinAge(200*time.Millisecond), kgo.ProducerLinger(2*time.Millisecond), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	log := &ackLog{acked: map[int32][]ack{}}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			v := i
			cl.Produce(context.Background(), &kgo.Record{Topic: "orders", Value: []byte(strconv.Itoa(v))}, func(r *kgo.Record, err error) {
				log.mu.Lock()
				defer log.mu.Unlock()
				if err != nil {
					log.errs++
					return
				}
				log.acked[r.Partition] = append(log.acked[r.Partition], ack{value: v, offset: r.Offset, at: time.Now()})
			})
			time.Sleep(time.Millisecond)
		}
	}()
	progress := func(what string) {
		t.Helper()
		log.mu.Lock()
		before := 0
		for _, a := range log.acked {
			before += len(a)
		}
		log.mu.Unlock()
		deadline := time.Now().Add(30 * time.Second)
		for {
			log.mu.Lock()
			n := 0
			for _, a := range log.acked {
				n += len(a)
			}
			log.mu.Unlock()
			if n >= before+300 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no progress after %s: %d acks", what, n-before)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	progress("start")

	// Kill the leader of each partition in turn, then bring it back.
	for p := int32(0); p < 3; p++ {
		leader := ps[p].Leader
		victim := c.Node(leader)
		other := c.Node(leader%3 + 1)
		killed := time.Now()
		victim.Kill(t)
		ps = waitPartitions(t, other, "orders", "a new leader", func(ps []partitionState) bool {
			return ps[p].Leader != leader && ps[p].Leader > 0
		})
		progress(fmt.Sprintf("killing node %d", leader))
		t.Logf("partition %d: leader %d killed; node %d leads at epoch %d; first ack on it %v after the kill",
			p, leader, ps[p].Leader, ps[p].LeaderEpoch, firstAckAfter(log, p, killed).Round(time.Millisecond))
		victim.Restart(t)
		ps = waitPartitions(t, other, "orders", "the restarted node back in the ISR", func(ps []partitionState) bool { return allISR(ps, 3) })
	}

	// A follower paused past the lag limit leaves the ISR; writes go on
	// with the other two; resumed, it catches up and returns.
	leader := ps[0].Leader
	follower := c.Node(ps[0].Replicas[slices.IndexFunc(ps[0].Replicas, func(id int32) bool { return id != leader })])
	follower.Pause(t)
	waitPartitions(t, c.Node(leader), "orders", "the paused follower out of the ISR", func(ps []partitionState) bool { return len(ps[0].ISR) == 2 })
	progress("pausing a follower")
	follower.Resume(t)
	ps = waitPartitions(t, c.Node(leader), "orders", "the resumed follower back in the ISR", func(ps []partitionState) bool { return allISR(ps, 3) })

	// A paused leader is deposed; when it wakes up it must not have
	// acknowledged anything alone, and it follows the new leader.
	leader = ps[1].Leader
	c.Node(leader).Pause(t)
	waitPartitions(t, c.Node(leader%3+1), "orders", "a leader replacing the paused one", func(ps []partitionState) bool {
		return ps[1].Leader != leader && ps[1].Leader > 0
	})
	progress("pausing a leader")
	c.Node(leader).Resume(t)
	waitPartitions(t, c.Node(leader%3+1), "orders", "the old leader back in the ISR", func(ps []partitionState) bool { return allISR(ps, 3) })
	progress("resuming the old leader")

	stop()
	wg.Wait()
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	total := 0
	for _, a := range log.acked {
		total += len(a)
	}
	t.Logf("%d records acknowledged, %d failed", total, log.errs)
	ps = waitPartitions(t, n1, "orders", "every replica caught up", func(ps []partitionState) bool { return allISR(ps, 3) })

	// Every acknowledged record is there exactly once, at the offset it was
	// acknowledged at, and no offset holds something else.
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaBrokers()...), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := map[int32]map[int64]string{}
	want := 0
	for _, p := range ps {
		want += int(p.HighWatermark)
	}
	seen := 0
	deadline := time.Now().Add(60 * time.Second)
	for seen < want && time.Now().Before(deadline) {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fs := cons.PollFetches(fctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if got[r.Partition] == nil {
				got[r.Partition] = map[int64]string{}
			}
			if _, dup := got[r.Partition][r.Offset]; dup {
				t.Errorf("offset %d/%d delivered twice", r.Partition, r.Offset)
			}
			got[r.Partition][r.Offset] = string(r.Value)
			seen++
		})
	}
	values := map[string]int{}
	for p, offs := range got {
		for o, v := range offs {
			if prev, dup := values[v]; dup {
				t.Errorf("value %s stored twice (partition %d offset %d and %d)", v, p, o, prev)
			}
			values[v] = int(o)
		}
	}
	for p, acks := range log.acked {
		for i, a := range acks {
			if v, ok := got[p][a.offset]; !ok || v != strconv.Itoa(a.value) {
				t.Fatalf("acknowledged %d at %d/%d: found %q (%v)", a.value, p, a.offset, v, ok)
			}
			if i > 0 && a.offset <= acks[i-1].offset {
				t.Fatalf("partition %d: acknowledged offsets out of order: %d after %d", p, a.offset, acks[i-1].offset)
			}
		}
	}

	// Replicas are identical byte for byte: stop the nodes cleanly and
	// compare each partition's log files.
	for _, n := range c.Nodes {
		n.Stop(t)
	}
	for p := range 3 {
		var first []byte
		for i, n := range c.Nodes {
			data := readLogs(t, filepath.Join(n.Dir, "topics", "orders", strconv.Itoa(p)))
			if i == 0 {
				first = data
				continue
			}
			if !bytes.Equal(data, first) {
				t.Fatalf("partition %d: node %d's log (%d bytes) differs from node 1's (%d bytes)", p, i+1, len(data), len(first))
			}
		}
	}
}

func allISR(ps []partitionState, n int) bool {
	for _, p := range ps {
		if len(p.ISR) != n || p.Leader <= 0 {
			return false
		}
	}
	return true
}

// firstAckAfter is how long after t the first record of partition p was
// acknowledged.
func firstAckAfter(log *ackLog, p int32, t time.Time) time.Duration {
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, a := range log.acked[p] {
		if a.at.After(t) {
			return a.at.Sub(t)
		}
	}
	return -1
}

// readLogs concatenates a partition's segment files in name (base offset)
// order.
func readLogs(t *testing.T, dir string) []byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	var out []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}
