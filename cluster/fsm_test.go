package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
)

func testLogger() *slog.Logger {
	if os.Getenv("WISP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// recorder is an Applier that records what it is told.
type recorder struct {
	mu      sync.Mutex
	topics  map[string]bus.TopicState
	deleted []string
	calls   int
	funcs   map[string]Function
}

func newRecorder() *recorder {
	return &recorder{topics: map[string]bus.TopicState{}, funcs: map[string]Function{}}
}

func (r *recorder) ApplyTopic(ts bus.TopicState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.topics[ts.Name] = cloneTopic(ts)
	r.calls++
	return nil
}

func (r *recorder) ApplyTopicDeleted(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.topics, name)
	r.deleted = append(r.deleted, name)
	r.calls++
	return nil
}

func (r *recorder) ApplyFunction(f Function) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.funcs[f.Name] = f
	return nil
}

func (r *recorder) ApplyFunctionDeleted(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.funcs, name)
	return nil
}

func (r *recorder) topic(name string) (bus.TopicState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.topics[name]
	return cloneTopic(t), ok
}

func (r *recorder) snapshot() map[string]bus.TopicState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]bus.TopicState{}
	for k, v := range r.topics {
		out[k] = cloneTopic(v)
	}
	return out
}

// applyCmd feeds a command through the FSM as raft would.
func applyCmd(t *testing.T, f *fsm, idx uint64, c command) applyResult {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	res, ok := f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: data}).(applyResult)
	if !ok {
		t.Fatal("Apply did not return an applyResult")
	}
	return res
}

func topicCmd(name string, parts ...bus.PartitionAssignment) command {
	return command{Op: opCreateTopic, Topic: &bus.TopicState{
		Name: name, ID: [16]byte{1}, ReplicationFactor: int16(len(parts[0].Replicas)),
		Configs: map[string]string{"retention.ms": "1000"}, Partitions: parts,
	}}
}

func TestFSMApply(t *testing.T) {
	rec := newRecorder()
	f := newFSM(testLogger(), rec)
	r := []int32{1, 2, 3}
	idx := uint64(0)
	next := func() uint64 { idx++; return idx }

	if res := applyCmd(t, f, next(), topicCmd("t", pa(0, r, 1, 0, r), pa(1, []int32{2, 3, 1}, 2, 0, []int32{2, 3, 1}))); res.Err != nil {
		t.Fatal(res.Err)
	}
	if got, ok := rec.topic("t"); !ok || len(got.Partitions) != 2 || got.Configs["retention.ms"] != "1000" {
		t.Fatalf("applier saw %+v", got)
	}
	for _, tc := range []struct {
		name string
		cmd  command
		err  error
	}{
		{"create again", topicCmd("t", pa(0, r, 1, 0, r)), kerr.TopicAlreadyExists},
		{"create: partitions misnumbered", topicCmd("u", pa(1, r, 1, 0, r)), kerr.InvalidReplicaAssignment},
		{"delete unknown", command{Op: opDeleteTopic, Name: "nope"}, kerr.UnknownTopicOrPartition},
		{"alter isr: stale epoch", command{Op: opAlterISR, Name: "t", Partition: 0, From: 1, LeaderEpoch: -1, ISR: []int32{1}}, kerr.FencedLeaderEpoch},
		{"alter isr: future epoch", command{Op: opAlterISR, Name: "t", Partition: 0, From: 1, LeaderEpoch: 7, ISR: []int32{1}}, kerr.UnknownLeaderEpoch},
		{"alter isr: not leader", command{Op: opAlterISR, Name: "t", Partition: 0, From: 2, LeaderEpoch: 0, ISR: []int32{1}}, kerr.NotLeaderForPartition},
		{"alter isr: leader left out", command{Op: opAlterISR, Name: "t", Partition: 0, From: 1, LeaderEpoch: 0, ISR: []int32{2}}, kerr.InvalidRequest},
		{"alter isr: not a replica", command{Op: opAlterISR, Name: "t", Partition: 0, From: 1, LeaderEpoch: 0, ISR: []int32{1, 9}}, kerr.InvalidRequest},
		{"alter isr: duplicate", command{Op: opAlterISR, Name: "t", Partition: 0, From: 1, LeaderEpoch: 0, ISR: []int32{1, 1}}, kerr.InvalidRequest},
		{"alter isr: unknown partition", command{Op: opAlterISR, Name: "t", Partition: 5, From: 1, ISR: []int32{1}}, kerr.UnknownTopicOrPartition},
		{"update: stale plan", command{Op: opUpdatePartition, Name: "t", Partition: 0, LeaderEpoch: 3, Leader: 2, ISR: []int32{2}}, kerr.FencedLeaderEpoch},
		{"update: leader not a replica", command{Op: opUpdatePartition, Name: "t", Partition: 0, LeaderEpoch: 0, Leader: 9, ISR: []int32{9}}, kerr.InvalidRequest},
		{"add partitions: gap", command{Op: opAddPartitions, Name: "t", Partitions: []bus.PartitionAssignment{pa(3, r, 1, 0, r)}}, kerr.InvalidPartitions},
		{"allocate 0", command{Op: opAllocatePIDs, N: 0}, kerr.InvalidRequest},
		{"unknown op", command{Op: "nope"}, kerr.InvalidRequest},
		{"delete unknown function", command{Op: opDeleteFunction, Name: "f"}, ErrUnknownFunction},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rec.snapshot()
			res := applyCmd(t, f, next(), tc.cmd)
			if !errors.Is(res.Err, tc.err) {
				t.Fatalf("err = %v, want %v", res.Err, tc.err)
			}
			if after := rec.snapshot(); !sameTopics(before, after) {
				t.Fatal("a refused command reached the applier")
			}
		})
	}

	// Accepted changes.
	if res := applyCmd(t, f, next(), command{Op: opAlterISR, Name: "t", Partition: 0, From: 1, LeaderEpoch: 0, ISR: []int32{1, 3}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := applyCmd(t, f, next(), command{Op: opUpdatePartition, Name: "t", Partition: 0, LeaderEpoch: 0, Leader: 3, ISR: []int32{3}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	got, _ := rec.topic("t")
	if p := got.Partitions[0]; p.Leader != 3 || p.LeaderEpoch != 1 || !slices.Equal(p.ISR, []int32{3}) {
		t.Fatalf("after failover %+v", p)
	}
	// The deposed leader's AlterISR is fenced.
	if res := applyCmd(t, f, next(), command{Op: opAlterISR, Name: "t", Partition: 0, From: 1, LeaderEpoch: 0, ISR: []int32{1, 2}}); !errors.Is(res.Err, kerr.FencedLeaderEpoch) {
		t.Fatalf("deposed leader: %v", res.Err)
	}
	if res := applyCmd(t, f, next(), command{Op: opAlterConfigs, Name: "t", Configs: map[string]string{"retention.ms": "", "flush": "os"}, Incremental: true}); res.Err != nil {
		t.Fatal(res.Err)
	}
	got, _ = rec.topic("t")
	if len(got.Configs) != 1 || got.Configs["flush"] != "os" {
		t.Fatalf("configs %v", got.Configs)
	}
	if res := applyCmd(t, f, next(), command{Op: opAddPartitions, Name: "t", Partitions: []bus.PartitionAssignment{pa(2, r, 1, 0, r)}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if got, _ = rec.topic("t"); len(got.Partitions) != 3 {
		t.Fatalf("%d partitions", len(got.Partitions))
	}
	a := applyCmd(t, f, next(), command{Op: opAllocatePIDs, N: 1000})
	b := applyCmd(t, f, next(), command{Op: opAllocatePIDs, N: 10})
	if a.Err != nil || b.Err != nil || a.First != 0 || b.First != 1000 {
		t.Fatalf("producer ids %+v %+v", a, b)
	}
	if res := applyCmd(t, f, next(), command{Op: opDeleteTopic, Name: "t"}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if _, ok := rec.topic("t"); ok || !slices.Equal(rec.deleted, []string{"t"}) {
		t.Fatalf("delete not applied: %v", rec.deleted)
	}
	if f.applied != idx {
		t.Fatalf("applied %d, want %d", f.applied, idx)
	}
}

func sameTopics(a, b map[string]bus.TopicState) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestFSMFunctions(t *testing.T) {
	rec := newRecorder()
	f := newFSM(testLogger(), rec)
	mod := []byte("\x00asm module")
	fn := Function{Name: "enrich", Manifest: json.RawMessage(`{"input":"a"}`), ModuleSHA256: sha256Hex(mod)}
	if res := applyCmd(t, f, 1, command{Op: opPutFunction, Function: &fn, Module: mod}); res.Err != nil {
		t.Fatal(res.Err)
	}
	bad := fn
	bad.ModuleSHA256 = sha256Hex([]byte("other"))
	if res := applyCmd(t, f, 2, command{Op: opPutFunction, Function: &bad, Module: mod}); !errors.Is(res.Err, kerr.InvalidRequest) {
		t.Fatalf("sha mismatch: %v", res.Err)
	}
	if res := applyCmd(t, f, 3, command{Op: opPutFunction, Function: &fn, Module: make([]byte, MaxModuleBytes+1)}); !errors.Is(res.Err, ErrModuleTooLarge) {
		t.Fatalf("too large: %v", res.Err)
	}
	f.read(func(s *state) {
		if string(s.Modules[fn.ModuleSHA256]) != string(mod) || len(s.Modules) != 1 {
			t.Fatalf("modules %v", s.Modules)
		}
	})
	if rec.funcs["enrich"].ModuleSHA256 != fn.ModuleSHA256 {
		t.Fatal("function applier not told")
	}
	if res := applyCmd(t, f, 4, command{Op: opDeleteFunction, Name: "enrich"}); res.Err != nil {
		t.Fatal(res.Err)
	}
	f.read(func(s *state) {
		if len(s.Modules) != 0 || len(s.Functions) != 0 {
			t.Fatal("module kept after its function was deleted")
		}
	})
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	rec := newRecorder()
	f := newFSM(testLogger(), rec)
	r := []int32{1, 2}
	applyCmd(t, f, 1, topicCmd("a", pa(0, r, 1, 0, r)))
	applyCmd(t, f, 2, topicCmd("b", pa(0, r, 2, 0, r)))
	applyCmd(t, f, 3, command{Op: opAllocatePIDs, N: 5})
	applyCmd(t, f, 4, command{Op: opRegisterNode, Node: &nodeRecord{ID: 1, QUIC: "127.0.0.1:7071", Rack: "x"}})
	fn := Function{Name: "f", Manifest: json.RawMessage(`{}`), ModuleSHA256: sha256Hex([]byte("m"))}
	applyCmd(t, f, 5, command{Op: opPutFunction, Function: &fn, Module: []byte("m")})

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	// A fresh FSM (a restarted node) restores everything and tells its
	// applier every topic.
	rec2 := newRecorder()
	f2 := newFSM(testLogger(), rec2)
	if err := f2.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if !sameTopics(rec.snapshot(), rec2.snapshot()) {
		t.Fatalf("restored applier state differs:\n%v\n%v", rec.snapshot(), rec2.snapshot())
	}
	f2.read(func(s *state) {
		if s.NextProducerID != 5 || s.Nodes[1].Rack != "x" || s.Index != 5 || s.Cursor != 2 ||
			s.Functions["f"].ModuleSHA256 != fn.ModuleSHA256 || string(s.Modules[fn.ModuleSHA256]) != "m" {
			t.Fatalf("restored state %+v", s)
		}
	})
	if f2.applied != 5 {
		t.Fatalf("applied %d after restore", f2.applied)
	}
	// Allocation continues after the restored counter.
	if res := applyCmd(t, f2, 6, command{Op: opAllocatePIDs, N: 1}); res.First != 5 {
		t.Fatalf("first id after restore %d", res.First)
	}

	// Restoring an older snapshot over a newer state: topics that
	// disappeared are deleted on the applier.
	applyCmd(t, f2, 7, topicCmd("c", pa(0, r, 1, 0, r)))
	if err := f2.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if _, ok := rec2.topic("c"); ok || !slices.Contains(rec2.deleted, "c") {
		t.Fatalf("topic c not deleted on restore: %v", rec2.deleted)
	}
	if len(rec2.snapshot()) != 2 {
		t.Fatalf("topics after restore %v", rec2.snapshot())
	}
}

func TestErrorsCrossTheWire(t *testing.T) {
	for _, err := range []error{
		kerr.TopicAlreadyExists, kerr.FencedLeaderEpoch, ErrUnknownFunction, ErrModuleTooLarge, errNotController,
	} {
		wrapped := errors.Join(errors.New("detail"), err)
		var r response
		encodeError(&r, wrapped)
		b, _ := json.Marshal(r)
		var back response
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		got := decodeError(back)
		if !errors.Is(got, err) || got.Error() != wrapped.Error() {
			t.Fatalf("%v crossed as %v", err, got)
		}
	}
	var r response
	encodeError(&r, errors.New("plain"))
	if got := decodeError(r); !errors.Is(got, kerr.UnknownServerError) {
		t.Fatalf("plain error crossed as %v", got)
	}
}
