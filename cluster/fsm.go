package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/wispbus/wisp/bus"
)

// Applier is told the metadata's decisions about topics, in log order: on
// every commit, when a restarted node replays its log, and when a snapshot
// is restored. *bus.Broker implements it. Both methods must be idempotent.
// They run on the Raft FSM goroutine: a slow Applier delays later commits
// on this node (not the cluster), and an Applier must not wait for a
// Cluster write from inside them (the write waits for this goroutine to
// apply it: a deadlock until the write's context ends); start such work
// in a goroutine. An error is logged; the metadata stays decided.
type Applier interface {
	// ApplyTopic creates or updates a topic to match ts (configs,
	// partitions, replicas, leader, epoch, ISR).
	ApplyTopic(ts bus.TopicState) error
	// ApplyTopicDeleted removes a topic.
	ApplyTopicDeleted(name string) error
}

// FunctionApplier is implemented by an Applier that also wants function
// deployments (optional; see Node.PutFunction).
type FunctionApplier interface {
	ApplyFunction(f Function) error
	ApplyFunctionDeleted(name string) error
}

// fsm is the raft.FSM of the metadata: the state, and the Applier it
// drives.
//
// Lock order: mu is never held while calling the Applier, so an Applier
// may read the Node (Nodes, Topic) from inside ApplyTopic.
type fsm struct {
	log     *slog.Logger
	applier Applier

	mu      sync.RWMutex
	st      *state
	applied uint64        // last log index whose effects the Applier has seen
	notify  chan struct{} // closed and replaced when applied grows
}

func newFSM(log *slog.Logger, a Applier) *fsm {
	return &fsm{log: log, applier: a, st: newState(), notify: make(chan struct{})}
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		f.log.Error("metadata: undecodable log entry skipped", "index", l.Index, "err", err)
		f.advance(l.Index)
		return applyResult{Err: fmt.Errorf("cluster: decode command: %w", err)}
	}
	f.mu.Lock()
	res, eff := f.st.apply(l.Index, c)
	f.mu.Unlock()
	f.effect(eff)
	f.advance(l.Index)
	return res
}

// effect hands a command's effect to the Applier.
func (f *fsm) effect(eff effect) {
	if f.applier == nil {
		return
	}
	if eff.topic != nil {
		if err := f.applier.ApplyTopic(*eff.topic); err != nil {
			f.log.Error("metadata: applying topic failed", "topic", eff.topic.Name, "err", err)
		}
	}
	if eff.deleted != "" {
		if err := f.applier.ApplyTopicDeleted(eff.deleted); err != nil {
			f.log.Error("metadata: deleting topic failed", "topic", eff.deleted, "err", err)
		}
	}
	fa, ok := f.applier.(FunctionApplier)
	if !ok {
		return
	}
	if eff.function != nil {
		if err := fa.ApplyFunction(*eff.function); err != nil {
			f.log.Error("metadata: applying function failed", "function", eff.function.Name, "err", err)
		}
	}
	if eff.fdeleted != "" {
		if err := fa.ApplyFunctionDeleted(eff.fdeleted); err != nil {
			f.log.Error("metadata: deleting function failed", "function", eff.fdeleted, "err", err)
		}
	}
}

func (f *fsm) advance(idx uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if idx > f.applied {
		f.applied = idx
		close(f.notify)
		f.notify = make(chan struct{})
	}
}

// waitApplied returns once the log up to idx is applied on this node.
func (f *fsm) waitApplied(ctx context.Context, idx uint64) error {
	for {
		f.mu.RLock()
		done, ch := f.applied >= idx, f.notify
		f.mu.RUnlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// read runs fn with the state read-locked.
func (f *fsm) read(fn func(s *state)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.st)
}

// Snapshot implements raft.FSM: the state as JSON.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	data, err := json.Marshal(f.st)
	f.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("cluster: snapshot: %w", err)
	}
	return &fsmSnapshot{data: data}, nil
}

// Restore implements raft.FSM: it replaces the state and tells the Applier
// every topic of the new state, and every topic that disappeared.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st := newState()
	if err := json.NewDecoder(rc).Decode(st); err != nil {
		return fmt.Errorf("cluster: restore snapshot: %w", err)
	}
	// A JSON null decodes to a nil map.
	if st.Nodes == nil {
		st.Nodes = map[int32]nodeRecord{}
	}
	if st.Topics == nil {
		st.Topics = map[string]bus.TopicState{}
	}
	if st.Functions == nil {
		st.Functions = map[string]Function{}
	}
	if st.Modules == nil {
		st.Modules = map[string][]byte{}
	}
	f.mu.Lock()
	old := f.st
	f.st = st
	f.mu.Unlock()
	for _, name := range old.sortedTopics() {
		if _, ok := st.Topics[name]; !ok {
			f.effect(effect{deleted: name})
		}
	}
	for _, name := range st.sortedTopics() {
		f.effect(effect{topic: ptr(cloneTopic(st.Topics[name]))})
	}
	for _, name := range slices.Sorted(maps.Keys(old.Functions)) {
		if _, ok := st.Functions[name]; !ok {
			f.effect(effect{fdeleted: name})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(st.Functions)) {
		fn := st.Functions[name]
		f.effect(effect{function: &fn})
	}
	f.advance(st.Index)
	return nil
}

type fsmSnapshot struct{ data []byte }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("cluster: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
