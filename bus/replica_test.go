package bus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/bus/group"
	"github.com/wispbus/wisp/internal/batch"
)

// memCluster is an in-process stand-in for the Raft metadata (package
// cluster has the real one): it applies every decision to every broker in
// order, like the replicated state machine does. Links between brokers are
// direct calls that a test can cut.
type memCluster struct {
	mu      sync.Mutex
	brokers map[int32]*bus.Broker
	topics  map[string]bus.TopicState
	cut     map[int32]bool // nodes whose links are down
	nextPID int64
}

func newMemCluster(t *testing.T, n int, lag time.Duration) *memCluster {
	t.Helper()
	c := &memCluster{brokers: map[int32]*bus.Broker{}, topics: map[string]bus.TopicState{}, cut: map[int32]bool{}}
	for id := int32(1); id <= int32(n); id++ {
		b := openBroker(t, t.TempDir(), func(cfg *bus.Config) {
			cfg.NodeID = id
			cfg.Clustered = true
			cfg.ReplicaLagMax = lag
			cfg.ReplicaFetchWait = 50 * time.Millisecond
			cfg.OffsetsReplicas = 3
		})
		t.Cleanup(func() { b.Close() })
		c.brokers[id] = b
	}
	for id, b := range c.brokers {
		b.SetCluster(memNode{c, id}, memLinks{c, id})
	}
	return c
}

// apply commits a topic state to every broker whose link is up.
func (c *memCluster) applyLocked(ts bus.TopicState) error {
	c.topics[ts.Name] = ts
	for id, b := range c.brokers {
		if c.cut[id] {
			continue
		}
		if err := b.ApplyTopic(ts); err != nil {
			return err
		}
	}
	return nil
}

// heal reconnects a node and replays the current state to it.
func (c *memCluster) heal(t *testing.T, id int32) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut[id] = false
	for _, ts := range c.topics {
		if err := c.brokers[id].ApplyTopic(ts); err != nil {
			t.Fatal(err)
		}
	}
}

func (c *memCluster) setCut(id int32, cut bool) {
	c.mu.Lock()
	c.cut[id] = cut
	c.mu.Unlock()
}

// elect makes leader the leader of topic/0 with the next epoch and the
// given ISR, as the controller does on a failure.
func (c *memCluster) elect(t *testing.T, topic string, leader int32, isr []int32) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	ts, ok := c.topics[topic]
	if !ok {
		t.Fatalf("no topic %s", topic)
	}
	ts.Partitions = slices.Clone(ts.Partitions)
	a := ts.Partitions[0]
	a.Leader, a.LeaderEpoch, a.ISR = leader, a.LeaderEpoch+1, isr
	ts.Partitions[0] = a
	if err := c.applyLocked(ts); err != nil {
		t.Fatal(err)
	}
}

func (c *memCluster) partition(topic string) bus.PartitionAssignment {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.topics[topic].Partitions[0]
}

type memNode struct {
	c  *memCluster
	id int32
}

func (n memNode) CreateTopic(ctx context.Context, spec bus.TopicSpec) error {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	if _, ok := n.c.topics[spec.Name]; ok {
		return kerr.TopicAlreadyExists
	}
	ts := bus.TopicState{Name: spec.Name, ReplicationFactor: spec.ReplicationFactor, Configs: spec.Configs}
	ts.ID[0] = byte(len(n.c.topics) + 1)
	var replicas []int32
	for id := int32(1); id <= int32(spec.ReplicationFactor); id++ {
		replicas = append(replicas, id)
	}
	for p := int32(0); p < spec.Partitions; p++ {
		ts.Partitions = append(ts.Partitions, bus.PartitionAssignment{Partition: p, Replicas: replicas,
			Leader: 1, LeaderEpoch: 0, ISR: slices.Clone(replicas)})
	}
	return n.c.applyLocked(ts)
}
func (n memNode) DeleteTopic(context.Context, string) error { return errors.New("unsupported") }
func (n memNode) AlterTopicConfigs(context.Context, string, map[string]string, bool) error {
	return errors.New("unsupported")
}
func (n memNode) AddPartitions(context.Context, string, int32) error {
	return errors.New("unsupported")
}
func (n memNode) AlterISR(ctx context.Context, topic string, partition, epoch int32, isr []int32) error {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	if n.c.cut[n.id] {
		return fmt.Errorf("%w: unreachable", kerr.NotController)
	}
	ts := n.c.topics[topic]
	a := ts.Partitions[partition]
	if a.LeaderEpoch != epoch {
		return kerr.FencedLeaderEpoch
	}
	ts.Partitions = slices.Clone(ts.Partitions)
	a.ISR = isr
	ts.Partitions[partition] = a
	return n.c.applyLocked(ts)
}
func (n memNode) AllocateProducerIDs(ctx context.Context, k int64) (int64, error) {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	first := n.c.nextPID
	n.c.nextPID += k
	return first, nil
}
func (n memNode) Nodes() []bus.NodeInfo {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	var out []bus.NodeInfo
	for id := range n.c.brokers {
		out = append(out, bus.NodeInfo{ID: id, Alive: true})
	}
	return out
}
func (n memNode) ControllerID() int32 { return 1 }

type memLinks struct {
	c  *memCluster
	id int32
}

func (l memLinks) peer(leader int32) (*bus.Broker, error) {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	if l.c.cut[l.id] || l.c.cut[leader] {
		return nil, errors.New("link down")
	}
	return l.c.brokers[leader], nil
}

func (l memLinks) ReplicaFetch(ctx context.Context, leader int32, req bus.ReplicaFetchRequest) (bus.ReplicaFetchResponse, error) {
	b, err := l.peer(leader)
	if err != nil {
		time.Sleep(10 * time.Millisecond)
		return bus.ReplicaFetchResponse{}, err
	}
	resp, err := b.ReplicaFetch(ctx, req)
	// The wire copies the bytes; so does this link.
	resp.Batches = bytes.Clone(resp.Batches)
	return resp, err
}

func (l memLinks) LeaderEpochEnd(ctx context.Context, leader int32, topic string, partition, epoch int32) (int32, int64, error) {
	b, err := l.peer(leader)
	if err != nil {
		return -1, -1, err
	}
	return b.LeaderEpochEnd(topic, partition, epoch)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawLog reads a replica's whole log, up to upTo, as stored.
func rawLog(t *testing.T, b *bus.Broker, topic string, upTo int64) []byte {
	t.Helper()
	p, err := b.Partition(topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	data, err := p.Log().Read(p.Log().StartOffset(), 64<<20, upTo)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func produce(ctx context.Context, b *bus.Broker, topic string, acks bus.Acks, vals ...string) (bus.ProduceResult, error) {
	recs := make([]batch.Record, len(vals))
	for i, v := range vals {
		recs[i] = batch.Record{Value: []byte(v), Timestamp: time.Now().UnixMilli()}
	}
	raw, err := batch.Build(batch.NoProducer, recs)
	if err != nil {
		return bus.ProduceResult{}, err
	}
	return b.Produce(ctx, topic, 0, raw, acks)
}

func TestReplicationAcksAll(t *testing.T) {
	c := newMemCluster(t, 3, 5*time.Second)
	ctx := context.Background()
	if _, err := c.brokers[2].CreateTopic(ctx, bus.TopicSpec{Name: "r", Partitions: 1, ReplicationFactor: 3}); err != nil {
		t.Fatal(err)
	}
	info, err := c.brokers[3].Topic("r")
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Effective[bus.ConfigMinInsyncReplicas]; got != "2" {
		t.Fatalf("min.insync.replicas = %s, want 2 for RF=3", got)
	}
	for i := range 20 {
		res, err := produce(ctx, c.brokers[1], "r", bus.AcksAll, fmt.Sprintf("v%d", i))
		if err != nil {
			t.Fatal(err)
		}
		// acks=all: every ISR member has it once the call returns.
		for id := int32(2); id <= 3; id++ {
			p, _ := c.brokers[id].Partition("r", 0)
			if p.Log().EndOffset() <= res.LastOffset {
				t.Fatalf("node %d end %d after acks=all of offset %d", id, p.Log().EndOffset(), res.LastOffset)
			}
		}
	}
	if _, err := produce(ctx, c.brokers[2], "r", bus.AcksAll, "x"); !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("produce on a follower: %v, want NOT_LEADER_FOR_PARTITION", err)
	}
	if _, err := c.brokers[2].Fetch(ctx, "r", 0, 0, 1<<20); !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("consumer fetch on a follower: %v, want NOT_LEADER_FOR_PARTITION", err)
	}
	want := rawLog(t, c.brokers[1], "r", 20)
	for id := int32(2); id <= 3; id++ {
		waitFor(t, "follower high watermark", func() bool {
			p, _ := c.brokers[id].Partition("r", 0)
			return p.HighWatermark() == 20
		})
		if got := rawLog(t, c.brokers[id], "r", 20); !bytes.Equal(got, want) {
			t.Fatalf("node %d log differs from the leader's", id)
		}
	}
}

func TestReplicationISRShrinkAndMinISR(t *testing.T) {
	c := newMemCluster(t, 3, 300*time.Millisecond)
	ctx := context.Background()
	if _, err := c.brokers[1].CreateTopic(ctx, bus.TopicSpec{Name: "r", Partitions: 1, ReplicationFactor: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := produce(ctx, c.brokers[1], "r", bus.AcksAll, "a"); err != nil {
		t.Fatal(err)
	}
	// Node 3 stops fetching: acks=all waits until the leader drops it
	// from the ISR, then goes on with two replicas.
	c.setCut(3, true)
	if _, err := produce(ctx, c.brokers[1], "r", bus.AcksAll, "b"); err != nil {
		t.Fatal(err)
	}
	if isr := c.partition("r").ISR; !slices.Equal(isr, []int32{1, 2}) {
		t.Fatalf("ISR %v after node 3 lagged, want [1 2]", isr)
	}
	// Node 2 too: one replica is under min.insync.replicas=2.
	c.setCut(2, true)
	waitFor(t, "ISR shrink to the leader", func() bool { return len(c.partition("r").ISR) == 1 })
	if _, err := produce(ctx, c.brokers[1], "r", bus.AcksAll, "c"); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with ISR [1]: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	if _, err := produce(ctx, c.brokers[1], "r", bus.AcksLeader, "c"); err != nil {
		t.Fatalf("acks=1 with ISR [1]: %v", err)
	}
	// Both come back, catch up and rejoin the ISR.
	c.heal(t, 2)
	c.heal(t, 3)
	waitFor(t, "ISR expansion", func() bool { return len(c.partition("r").ISR) == 3 })
	if _, err := produce(ctx, c.brokers[1], "r", bus.AcksAll, "d"); err != nil {
		t.Fatal(err)
	}
	want := rawLog(t, c.brokers[1], "r", 4)
	for id := int32(2); id <= 3; id++ {
		if got := rawLog(t, c.brokers[id], "r", 4); !bytes.Equal(got, want) {
			t.Fatalf("node %d log differs from the leader's", id)
		}
	}
}

func TestReplicationFailoverTruncatesDeposedLeader(t *testing.T) {
	c := newMemCluster(t, 3, 5*time.Second)
	ctx := context.Background()
	if _, err := c.brokers[1].CreateTopic(ctx, bus.TopicSpec{Name: "r", Partitions: 1, ReplicationFactor: 3}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := produce(ctx, c.brokers[1], "r", bus.AcksAll, fmt.Sprintf("a%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Node 1 is cut off. It still believes it leads: acks=all cannot
	// complete there (the followers left), acks=1 writes diverge.
	c.setCut(1, true)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	if _, err := produce(short, c.brokers[1], "r", bus.AcksAll, "lost-1"); !errors.Is(err, kerr.RequestTimedOut) {
		t.Fatalf("acks=all on an isolated leader: %v, want REQUEST_TIMED_OUT (never acknowledged)", err)
	}
	cancel()
	if _, err := produce(ctx, c.brokers[1], "r", bus.AcksLeader, "lost-2", "lost-3"); err != nil {
		t.Fatal(err)
	}
	// The controller elects node 2 with the next epoch.
	c.elect(t, "r", 2, []int32{2, 3})
	for i := range 4 {
		if _, err := produce(ctx, c.brokers[2], "r", bus.AcksAll, fmt.Sprintf("b%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Node 1 comes back, learns it was deposed, truncates what diverged
	// and follows node 2.
	c.heal(t, 1)
	waitFor(t, "node 1 back in the ISR", func() bool { return len(c.partition("r").ISR) == 3 })
	if _, err := produce(ctx, c.brokers[2], "r", bus.AcksAll, "c"); err != nil {
		t.Fatal(err)
	}
	want := rawLog(t, c.brokers[2], "r", 10)
	for _, id := range []int32{1, 3} {
		if got := rawLog(t, c.brokers[id], "r", 10); !bytes.Equal(got, want) {
			t.Fatalf("node %d log differs from the new leader's", id)
		}
	}
	recs := fetchAll(t, c.brokers[2], "r", 0, 0)
	var vals []string
	for _, r := range recs {
		// lost-1 was never acknowledged, but a follower may have fetched
		// it before the cut: then it survives, as in Kafka.
		if string(r.Value) != "lost-1" {
			vals = append(vals, string(r.Value))
		}
	}
	wantVals := []string{"a0", "a1", "a2", "a3", "a4", "b0", "b1", "b2", "b3", "c"}
	if !slices.Equal(vals, wantVals) {
		t.Fatalf("records %v, want %v", vals, wantVals)
	}
}

// Committed offsets live in the replicated offsets topic: when its leader
// moves, the new coordinator has every acknowledged commit.
func TestReplicatedGroupOffsets(t *testing.T) {
	c := newMemCluster(t, 3, 5*time.Second)
	waitFor(t, "a group coordinator", func() bool { return c.brokers[1].GroupCoordinator("g") == 1 })
	for id := int32(2); id <= 3; id++ {
		waitFor(t, "every node naming the coordinator", func() bool { return c.brokers[id].GroupCoordinator("g") == 1 })
	}
	tp := group.TopicPartition{Topic: "t", Partition: 0}
	if err := c.brokers[1].Groups().CommitOffsets("g", "", -1, map[group.TopicPartition]group.OffsetCommit{tp: {Offset: 42, LeaderEpoch: -1}}); err != nil {
		t.Fatal(err)
	}
	// A node that does not coordinate refuses commits.
	err := c.brokers[2].Groups().CommitOffsets("g", "", -1, map[group.TopicPartition]group.OffsetCommit{tp: {Offset: 1, LeaderEpoch: -1}})
	if !errors.Is(err, kerr.NotCoordinator) {
		t.Fatalf("commit on a non-coordinator: %v, want NOT_COORDINATOR", err)
	}
	c.setCut(1, true)
	c.elect(t, bus.OffsetsTopic, 2, []int32{2, 3})
	waitFor(t, "node 2 coordinating", func() bool { return c.brokers[2].GroupCoordinator("g") == 2 })
	got, err := c.brokers[2].Groups().FetchOffsets("g", []group.TopicPartition{tp})
	if err != nil {
		t.Fatal(err)
	}
	if got[tp].Offset != 42 {
		t.Fatalf("offset after coordinator failover: %+v, want 42", got[tp])
	}
}
