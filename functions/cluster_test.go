package functions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/bus/group"
)

// fakeMeta is an in-memory cluster for two managers: the metadata applies
// every record on every manager in commit order, outputs and offsets go to
// one broker (standing in for the partitions' leaders and the group
// coordinator).
type fakeMeta struct {
	mu      sync.Mutex
	modules map[string][]byte
	uploads int // commits that carried module bytes
	nodes   []*Manager
	home    *bus.Broker
}

func (f *fakeMeta) PutFunction(_ context.Context, name string, record []byte, hash string, module []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if module != nil {
		f.modules[hash] = module
		f.uploads++
	}
	if _, ok := f.modules[hash]; !ok {
		return fmt.Errorf("unknown module %s", hash)
	}
	for _, m := range f.nodes {
		if err := m.ApplyFunction(name, record); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeMeta) DeleteFunction(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.nodes {
		_ = m.ApplyFunctionDeleted(name)
	}
	return nil
}

func (f *fakeMeta) Module(hash string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.modules[hash]
	return b, ok
}

func (f *fakeMeta) Produce(ctx context.Context, topic string, p int32, raw []byte) (bus.ProduceResult, error) {
	return f.home.Produce(ctx, topic, p, raw, bus.AcksAll)
}

func (f *fakeMeta) FetchOffsets(ctx context.Context, g string, tps []group.TopicPartition) (map[group.TopicPartition]group.OffsetCommit, error) {
	return brokerOffsets{f.home}.FetchOffsets(ctx, g, tps)
}

func (f *fakeMeta) CommitOffsets(ctx context.Context, g string, offs map[group.TopicPartition]group.OffsetCommit) error {
	return brokerOffsets{f.home}.CommitOffsets(ctx, g, offs)
}

func (f *fakeMeta) DeleteGroup(ctx context.Context, g string) error {
	return brokerOffsets{f.home}.DeleteGroup(ctx, g)
}

// TestClusterDeployments: a deploy, pause, resume, redeploy and delete made
// on either of two nodes reaches both through the metadata; each node runs
// the workers of the input partitions it leads and no others; the module
// bytes are committed once.
func TestClusterDeployments(t *testing.T) {
	meta := &fakeMeta{modules: map[string][]byte{}}
	leads := func(mine int32) func(*Config) {
		return func(c *Config) {
			c.Cluster = meta
			c.Leads = func(_ string, p int32) bool { return p == mine }
		}
	}
	a := openNode(t, t.TempDir(), leads(0))
	b := openNode(t, t.TempDir(), leads(1))
	meta.home = a.b
	meta.nodes = []*Manager{a.m, b.m}
	for _, n := range []*node{a, b} {
		n.createTopic("in", 2)
		n.createTopic("out", 2)
	}
	ctx := context.Background()
	man := Manifest{Name: "f", Input: "in", Outputs: []string{"out"}, Start: "start"}
	mod := module(t, "examples/transform")

	state := func(want State, version int) {
		t.Helper()
		for i, n := range []*node{a, b} {
			waitFor(t, 10*time.Second, fmt.Sprintf("node %d: %s version %d", i, want, version), func() bool {
				info, err := n.m.Info("f")
				return err == nil && info.State == want && info.Version == version
			})
		}
	}

	if _, err := b.m.Deploy(ctx, man, mod); err != nil {
		t.Fatal(err)
	}
	state(StateRunning, 1)
	// Each node processes the partition it leads, into the home broker.
	a.produce("in", 0, seq("a", 20)...)
	b.produce("in", 1, seq("b", 30)...)
	want := sorted(append(seq("a", 20), seq("b", 30)...))
	waitFor(t, 30*time.Second, "all outputs", func() bool { return len(a.consume("out")) >= len(want) })
	if got := sorted(values(a.consume("out"))); !slices.Equal(got, want) {
		t.Fatalf("outputs:\n got %q\nwant %q", got, want)
	}
	for i, n := range []*node{a, b} {
		d, err := n.m.Describe("f")
		if err != nil {
			t.Fatal(err)
		}
		for _, ps := range d.Partitions {
			if running := ps.Worker != "" && ps.Worker != workerStopped; running != (ps.Partition == int32(i)) {
				t.Fatalf("node %d: worker of partition %d is %q", i, ps.Partition, ps.Worker)
			}
		}
	}
	// Committed offsets are shared: both nodes see both partitions done.
	waitFor(t, 10*time.Second, "offsets committed", func() bool {
		ia, _ := a.m.Info("f")
		ib, _ := b.m.Info("f")
		return ia.Lag == 0 && ib.Lag == 0
	})

	if err := a.m.Pause(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	state(StatePaused, 1)
	if err := b.m.Resume(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	state(StateRunning, 1)
	if _, err := a.m.Deploy(ctx, man, mod); err != nil {
		t.Fatal(err)
	}
	state(StateRunning, 2)
	if meta.uploads != 1 {
		t.Fatalf("module committed %d times, want once", meta.uploads)
	}
	if err := b.m.Delete(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	for i, n := range []*node{a, b} {
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d: deleted", i), func() bool {
			_, err := n.m.Info("f")
			return errors.Is(err, ErrNotFound)
		})
	}
	if got, _ := a.b.Groups().FetchOffsets(GroupID("f"), nil); len(got) != 0 {
		t.Fatalf("offsets left after delete: %v", got)
	}
}
