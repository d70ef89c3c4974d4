package functions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/bus/group"
	"github.com/wispbus/wisp/wasm"
)

// Functions in a cluster (docs/functions.md, "In a cluster").
//
// The cluster metadata (one Raft group) is the truth about deployments:
// Deploy, Pause, Resume and Delete on any node validate locally, then
// commit a record (the deployment: manifest, module hash, version, state)
// and, the first time a module is seen, its bytes. Every node's metadata
// state machine hands each committed record to ApplyFunction, which only
// queues it: applying compiles a module and may create topics, neither of
// which may run on the Raft goroutine. The applier goroutine makes the
// local function match the record (a new version is compiled and
// replaces the running one; a state change starts or stops workers).
//
// Workers run where the input partition's leader is (Cluster.Leads), and
// move when it moves (Kick, called on every topic change, re-checks). The
// committed input offsets, with the exactly-once intent in their metadata,
// live in the replicated group offsets (Cluster.CommitOffsets reaches the
// group coordinator wherever it is), so the worker on a new leader resumes
// where the old one committed, replaying an interrupted unit with the same
// producer id and epoch. Outputs go to each output partition's leader
// (Cluster.Produce), which drops the duplicates of a replay.

// Offsets is where a Manager keeps the functions' committed input offsets.
// The default is the broker's own group coordinator.
type Offsets interface {
	FetchOffsets(ctx context.Context, group string, tps []group.TopicPartition) (map[group.TopicPartition]group.OffsetCommit, error)
	CommitOffsets(ctx context.Context, group string, offsets map[group.TopicPartition]group.OffsetCommit) error
	// DeleteGroup removes a group's offsets. In a cluster it is called on
	// every node when a function is deleted; a node that does not
	// coordinate the group may do nothing.
	DeleteGroup(ctx context.Context, group string) error
}

// Cluster is what a Manager needs of the cluster to run functions on
// several nodes; Config.Cluster nil is a single node. Its errors are kerr
// errors where Kafka has one; retriable ones (no leader or coordinator
// right now) never count as a function's failure.
type Cluster interface {
	Offsets
	// Produce appends batches to a partition with acks=all, on the node
	// that leads it.
	Produce(ctx context.Context, topic string, partition int32, batches []byte) (bus.ProduceResult, error)
	// PutFunction commits a function record to the metadata, with the
	// module bytes when module is not nil (nil: hash names a module the
	// metadata already holds). It returns once this node has applied it.
	PutFunction(ctx context.Context, name string, record []byte, hash string, module []byte) error
	// DeleteFunction removes a function from the metadata.
	DeleteFunction(ctx context.Context, name string) error
	// Module returns module bytes the metadata holds.
	Module(hash string) ([]byte, bool)
}

// brokerOffsets keeps offsets in the local broker's group coordinator.
type brokerOffsets struct{ b *bus.Broker }

func (o brokerOffsets) FetchOffsets(_ context.Context, g string, tps []group.TopicPartition) (map[group.TopicPartition]group.OffsetCommit, error) {
	return o.b.Groups().FetchOffsets(g, tps)
}

func (o brokerOffsets) CommitOffsets(_ context.Context, g string, offs map[group.TopicPartition]group.OffsetCommit) error {
	return o.b.Groups().CommitOffsets(g, "", -1, offs)
}

func (o brokerOffsets) DeleteGroup(_ context.Context, g string) error {
	if err := o.b.Groups().DeleteGroups(g)[g]; err != nil && !isGroupNotFound(err) {
		return err
	}
	return nil
}

// clusterTimeout bounds one call into the cluster (offsets, produce).
const clusterTimeout = 15 * time.Second

// produce writes one output batch with acks=all: to the local broker on a
// single node, to the partition's leader in a cluster.
func (m *Manager) produce(ctx context.Context, topic string, p int32, raw []byte) (bus.ProduceResult, error) {
	if m.cfg.Cluster == nil {
		return m.broker.Produce(ctx, topic, p, raw, bus.AcksAll)
	}
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	return m.cfg.Cluster.Produce(ctx, topic, p, raw)
}

func (m *Manager) fetchOffsets(g string, tps []group.TopicPartition) (map[group.TopicPartition]group.OffsetCommit, error) {
	return m.fetchOffsetsWithin(g, tps, clusterTimeout)
}

func (m *Manager) fetchOffsetsWithin(g string, tps []group.TopicPartition, d time.Duration) (map[group.TopicPartition]group.OffsetCommit, error) {
	ctx, cancel := context.WithTimeout(m.ctx, d)
	defer cancel()
	return m.offsets.FetchOffsets(ctx, g, tps)
}

func (m *Manager) commitOffsets(g string, offs map[group.TopicPartition]group.OffsetCommit) error {
	ctx, cancel := context.WithTimeout(m.ctx, clusterTimeout)
	defer cancel()
	return m.offsets.CommitOffsets(ctx, g, offs)
}

// transient lists the errors that mean the cluster is moving (a leader or
// coordinator changing, a node unreachable).
var transient = []error{kerr.NotLeaderForPartition, kerr.LeaderNotAvailable, kerr.FencedLeaderEpoch,
	kerr.NotCoordinator, kerr.CoordinatorNotAvailable, kerr.CoordinatorLoadInProgress, kerr.NotController,
	kerr.BrokerNotAvailable, kerr.RequestTimedOut, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend,
	context.DeadlineExceeded}

// transientErr reports whether err, in a cluster, is the cluster in
// transition: waited out without counting as the function's failure. On a
// single node every error counts, as before.
func (m *Manager) transientErr(err error) bool {
	if m.cfg.Cluster == nil {
		return false
	}
	for _, t := range transient {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// applyItem is a committed record waiting for the applier: dep nil is a
// deletion.
type applyItem struct {
	dep *deployment
	seq uint64
}

// ApplyFunction is how the cluster metadata tells this node a function's
// committed record (in log order, also when a restarted node replays its
// log). It only queues the record and returns at once: it runs on the
// metadata's goroutine.
func (m *Manager) ApplyFunction(name string, record []byte) error {
	var d deployment
	if err := json.Unmarshal(record, &d); err != nil || d.Manifest.Name != name {
		return fmt.Errorf("functions: undecodable record of %q: %v", name, err)
	}
	m.enqueue(name, &d)
	return nil
}

// ApplyFunctionDeleted is ApplyFunction for a deleted function.
func (m *Manager) ApplyFunctionDeleted(name string) error {
	m.enqueue(name, nil)
	return nil
}

func (m *Manager) enqueue(name string, d *deployment) {
	m.applyMu.Lock()
	m.applySeq++
	m.pending[name] = applyItem{dep: d, seq: m.applySeq}
	m.enqueued[name] = m.applySeq
	m.applyMu.Unlock()
	select {
	case m.applyWake <- struct{}{}:
	default:
	}
}

// Kick makes the manager look for leadership changes now rather than at
// its next scan: call it when the cluster metadata changed a topic.
func (m *Manager) Kick() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// applier applies queued records, one function at a time, and retries
// those that failed (a module not yet readable, a closing node) a second
// later.
func (m *Manager) applier() {
	defer m.wg.Done()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-m.stopScan:
			return
		case <-m.applyWake:
		case <-retry.C:
		}
		m.applyMu.Lock()
		batch := m.pending
		m.pending = map[string]applyItem{}
		m.applyMu.Unlock()
		failed := false
		for name, it := range batch {
			err := m.applyOne(name, it.dep)
			m.applyMu.Lock()
			switch {
			case err == nil:
				m.applied[name] = it.seq
				close(m.applyDone)
				m.applyDone = make(chan struct{})
			case m.pending[name].seq == 0: // not superseded meanwhile
				m.pending[name] = it
				failed = true
			}
			m.applyMu.Unlock()
			if err != nil {
				m.logger.Warn("applying a function deployment failed; retrying", "function", name, "err", err)
			}
		}
		if failed {
			retry.Reset(time.Second)
		}
	}
}

// waitApplied waits until the applier has applied everything queued for
// name so far: a caller that committed a record (whose commit returned once
// this node's metadata applied it) then sees its effect.
func (m *Manager) waitApplied(ctx context.Context, name string) error {
	m.applyMu.Lock()
	want := m.enqueued[name]
	m.applyMu.Unlock()
	for {
		m.applyMu.Lock()
		done, ch := m.applied[name] >= want, m.applyDone
		m.applyMu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("functions: %q committed but not yet applied on this node: %w", name, ctx.Err())
		}
	}
}

// applyOne makes the local function name match a committed record.
func (m *Manager) applyOne(name string, dep *deployment) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	f, existed := m.fns[name]
	if dep == nil {
		m.mu.Unlock()
		if existed {
			m.removeLocal(f)
		}
		// The node coordinating the group deletes the offsets.
		ctx, cancel := context.WithTimeout(m.ctx, clusterTimeout)
		defer cancel()
		if err := m.offsets.DeleteGroup(ctx, GroupID(name)); err != nil {
			m.logger.Warn("function offsets not deleted", "function", name, "err", err)
		}
		return nil
	}
	if !existed {
		f = m.newFunction(name)
		m.fns[name] = f
	}
	m.mu.Unlock()

	f.op.Lock()
	defer f.op.Unlock()
	if m.isClosed() { // Close may have stopped this function already
		return nil
	}
	f.mu.Lock()
	old := f.dep
	f.deleted = false
	f.mu.Unlock()
	same := old.Version == dep.Version && old.Module == dep.Module && sameManifest(old.Manifest, dep.Manifest)
	if same && old.State == dep.State && old.Error == dep.Error {
		return nil
	}
	if !same {
		module, err := m.moduleBytes(dep.Module)
		if err != nil {
			return err
		}
		proc, pool, mod, err := m.newProcessor(m.ctx, *dep, module, f.log)
		if err != nil {
			// Compiled where it was deployed; failing here is this node's
			// problem (memory, a corrupt cache): shown as failed here.
			m.stopWorkersLocked(f)
			m.releaseLocked(f)
			d := *dep
			d.State, d.Error = StateFailed, fmt.Sprintf("node %d: %v", m.broker.NodeID(), err)
			f.mu.Lock()
			f.dep = d
			f.mu.Unlock()
			f.log.printf("version %d could not be loaded: %v", dep.Version, err)
			return nil
		}
		m.stopWorkersLocked(f)
		m.releaseLocked(f)
		f.mu.Lock()
		f.dep, f.proc, f.pool, f.mod = *dep, proc, pool, mod
		f.mu.Unlock()
		f.log.printf("version %d deployed (module %s)", dep.Version, short(dep.Module))
		m.logger.Info("function deployed", "function", name, "version", dep.Version, "module", short(dep.Module))
		if dep.State != StateRunning {
			m.releaseLocked(f)
		}
		m.syncWorkersLocked(f)
		m.gcModules()
		return nil
	}
	// A state change of the same version.
	m.stopWorkersLocked(f)
	if dep.State != StateRunning {
		m.releaseLocked(f)
	}
	f.mu.Lock()
	f.dep.State, f.dep.Error = dep.State, dep.Error
	f.mu.Unlock()
	if old.State != dep.State {
		f.log.printf("%s (was %s)", dep.State, old.State)
	}
	if dep.State == StateRunning {
		if err := m.startLocked(m.ctx, f); err != nil {
			f.mu.Lock()
			f.dep.State, f.dep.Error = StateFailed, fmt.Sprintf("node %d: %v", m.broker.NodeID(), err)
			f.mu.Unlock()
		}
	}
	return nil
}

func sameManifest(a, b Manifest) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// moduleBytes finds a module in the local store, or else in the cluster
// metadata (and stores it locally).
func (m *Manager) moduleBytes(hash string) ([]byte, error) {
	if b, err := m.store.module(hash); err == nil {
		return b, nil
	}
	b, ok := m.cfg.Cluster.Module(hash)
	if !ok {
		return nil, fmt.Errorf("functions: module %s is not in the cluster metadata (yet)", short(hash))
	}
	if err := m.store.putModule(hash, b); err != nil {
		return nil, err
	}
	return b, nil
}

// removeLocal stops and forgets a function on this node only.
func (m *Manager) removeLocal(f *function) {
	f.op.Lock()
	defer f.op.Unlock()
	if already := m.forgetLocked(f); !already {
		f.log.closeFollowers()
		m.logger.Info("function deleted", "function", f.name)
	}
	m.gcModules()
}

// commitRecord commits dep (and module, unless the metadata holds it) to
// the cluster metadata and waits until this node applied it.
func (m *Manager) commitRecord(ctx context.Context, dep deployment, module []byte) error {
	rec, err := json.Marshal(dep)
	if err != nil {
		return err
	}
	if module != nil {
		if _, ok := m.cfg.Cluster.Module(dep.Module); ok {
			module = nil // stored once, by content
		}
	}
	if err := m.cfg.Cluster.PutFunction(ctx, dep.Manifest.Name, rec, dep.Module, module); err != nil {
		return fmt.Errorf("functions: commit %q to the cluster metadata: %w", dep.Manifest.Name, err)
	}
	return m.waitApplied(ctx, dep.Manifest.Name)
}

// deployCluster is Deploy in a cluster: validate here, commit, wait for
// this node to apply it.
func (m *Manager) deployCluster(ctx context.Context, man Manifest, module []byte) (Info, error) {
	dep := deployment{Manifest: man, State: StateRunning, Deployed: time.Now().UTC(), Module: wasm.Hash(module)}
	// Compile and run it once, so a bad module is refused before it is
	// committed anywhere.
	_, pool, mod, err := m.newProcessor(ctx, dep, module, newLogRing(10, 10))
	if err != nil {
		return Info{}, err
	}
	m.closeProcessor(pool, mod)
	if err := m.store.putModule(dep.Module, module); err != nil {
		return Info{}, err
	}
	m.mu.Lock()
	f := m.fns[man.Name]
	m.mu.Unlock()
	var old deployment
	if f != nil {
		f.mu.Lock()
		old = f.dep
		f.mu.Unlock()
	}
	// Versions are numbered by the deploying node from what it has
	// applied: two deploys of one function racing on two nodes may both
	// be version n+1 (the later commit wins).
	dep.Version = old.Version + 1
	if dep.Manifest.Start == "" {
		dep.Manifest.Start = old.Manifest.Start
	}
	if old.State != "" && man.Start != "" {
		if err := m.resetOffsets(dep, man.Start); err != nil {
			return Info{}, err
		}
	}
	if err := m.commitRecord(ctx, dep, module); err != nil {
		return Info{}, err
	}
	return m.Info(man.Name)
}

// setStateCluster is Pause or Resume in a cluster.
func (m *Manager) setStateCluster(ctx context.Context, f *function, to State) error {
	f.mu.Lock()
	dep := f.dep
	f.mu.Unlock()
	if dep.State == "" {
		return fmt.Errorf("%w: %q", ErrNotFound, f.name)
	}
	if dep.State == to {
		return nil
	}
	dep.State, dep.Error = to, ""
	return m.commitRecord(ctx, dep, nil)
}

// deleteCluster is Delete in a cluster.
func (m *Manager) deleteCluster(ctx context.Context, name string) error {
	if err := m.cfg.Cluster.DeleteFunction(ctx, name); err != nil {
		return fmt.Errorf("functions: delete %q from the cluster metadata: %w", name, err)
	}
	return m.waitApplied(ctx, name)
}

// reportFailed commits a function's failure so every node shows it (and
// none keeps running it). It runs on its own goroutine.
func (m *Manager) reportFailed(dep deployment) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(m.ctx, 30*time.Second)
		defer cancel()
		rec, err := json.Marshal(dep)
		if err == nil {
			err = m.cfg.Cluster.PutFunction(ctx, dep.Manifest.Name, rec, dep.Module, nil)
		}
		if err != nil {
			m.logger.Warn("function failure not committed to the cluster", "function", dep.Manifest.Name, "err", err)
		}
	}()
}
