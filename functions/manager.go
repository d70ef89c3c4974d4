package functions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/bus/group"
	"github.com/wispbus/wisp/wasm"
)

// Manager deploys and runs the functions of one node. It is safe for
// concurrent use.
//
// Lock order: function.op (held across a lifecycle change, which may wait
// for workers), then function.mu or Manager.mu (short, never held while
// waiting). Workers take neither op nor Manager.mu.
type Manager struct {
	cfg     Config
	broker  *bus.Broker
	rt      *wasm.Runtime
	ownRT   bool
	store   *store
	logger  *slog.Logger
	offsets Offsets // committed input offsets: the broker's, or the cluster's

	// ctx ends when Close gives up waiting for workers to finish writing.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex // guards fns and closed
	fns    map[string]*function
	closed bool

	stopScan chan struct{}
	kick     chan struct{}  // Kick: scan now
	wg       sync.WaitGroup // the scanner, the applier and failure handlers

	// In a cluster: records committed to the metadata, waiting for the
	// applier (cluster.go).
	applyMu   sync.Mutex
	applySeq  uint64
	pending   map[string]applyItem
	enqueued  map[string]uint64 // per function, the seq of the last record queued
	applied   map[string]uint64 // and of the last one applied
	applyDone chan struct{}     // closed and replaced when applied grows
	applyWake chan struct{}
}

// function is one deployed function.
type function struct {
	name  string
	log   *logRing
	stats counters

	op sync.Mutex // serialises Deploy, Pause, Resume, Delete and failing

	mu      sync.Mutex // guards the fields below
	dep     deployment
	proc    wasm.Processor
	pool    *wasm.Pool
	mod     *wasm.Module
	workers map[int32]*worker
	gen     int // bumped when workers are (re)started: a stale failure is ignored
	deleted bool
}

// Open starts the manager: it reloads every deployment from cfg.DataDir
// and starts the workers of the running ones, which resume from their
// committed offsets. The broker must stay open until Close returns.
func Open(cfg Config, b *bus.Broker) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	st, err := openStore(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, broker: b, rt: cfg.Runtime, store: st, logger: cfg.Logger,
		fns: map[string]*function{}, stopScan: make(chan struct{}), kick: make(chan struct{}, 1),
		pending: map[string]applyItem{}, enqueued: map[string]uint64{}, applied: map[string]uint64{},
		applyDone: make(chan struct{}), applyWake: make(chan struct{}, 1), offsets: brokerOffsets{b}}
	if cfg.Cluster != nil {
		m.offsets = cfg.Cluster
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if m.rt == nil {
		m.rt, err = wasm.NewRuntime(m.ctx, wasm.Config{CacheDir: filepath.Join(cfg.DataDir, "cache"), Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		m.ownRT = true
	}
	var deps []deployment
	if cfg.Cluster == nil {
		// In a cluster the metadata is the truth: it hands every
		// deployment to ApplyFunction, also after a restart.
		if deps, err = st.deployments(); err != nil {
			m.Close()
			return nil, err
		}
	}
	for _, d := range deps {
		f := m.newFunction(d.Manifest.Name)
		f.dep = d
		m.fns[f.name] = f
		if d.State != StateRunning {
			continue
		}
		f.op.Lock()
		if err := m.startLocked(m.ctx, f); err != nil {
			m.failLocked(f, fmt.Errorf("restart: %w", err))
		}
		f.op.Unlock()
	}
	m.wg.Add(2)
	go m.scan()
	go m.applier()
	return m, nil
}

func (f *function) isNative() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dep.native != nil
}

func (m *Manager) newFunction(name string) *function {
	return &function{name: name, log: newLogRing(m.cfg.LogLines, m.cfg.LogRate), workers: map[int32]*worker{}}
}

// Close stops every worker (each finishes writing the unit it is in, so
// that nothing needs replaying), and the runtime if Open created it. It
// must be called before the broker is closed.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	fns := slices.Collect(maps.Values(m.fns))
	m.mu.Unlock()
	close(m.stopScan)
	// Give in-flight writes a while, then cut them off.
	force := time.AfterFunc(30*time.Second, m.cancel)
	defer force.Stop()
	for _, f := range fns {
		f.op.Lock()
		m.stopWorkersLocked(f)
		m.releaseLocked(f)
		f.op.Unlock()
	}
	m.cancel()
	m.wg.Wait()
	if m.ownRT {
		return m.rt.Close(context.Background())
	}
	return nil
}

func (m *Manager) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

func (m *Manager) lookup(name string) (*function, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	f, ok := m.fns[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return f, nil
}

// Deploy deploys module under man.Name: version 1 of a new function, or
// the next version of an existing one, which continues from the committed
// offsets (or from man.Start when it is set). The module is compiled and
// run once before anything changes, so a module that fails to compile or
// lacks the ABI is rejected (errors.Is(err, wasm.ErrInvalidModule)) and a
// running version keeps running. Missing topics are created if the broker
// auto-creates topics. Deploy returns once the workers are started.
func (m *Manager) Deploy(ctx context.Context, man Manifest, module []byte) (Info, error) {
	return m.deploy(ctx, man, module, nil)
}

// DeployNative deploys a Go function in place of a module: the baseline
// of the benchmarks, and a way for a program embedding wisp to run a
// transform natively. It behaves like Deploy (offsets, exactly-once
// outputs, DLQ) except that nothing is stored: after a restart the
// function is gone (its committed offsets remain).
func (m *Manager) DeployNative(ctx context.Context, man Manifest, fn wasm.NativeFunc) (Info, error) {
	if fn == nil {
		return Info{}, fmt.Errorf("%w: nil native function", ErrInvalidManifest)
	}
	return m.deploy(ctx, man, nil, fn)
}

func (m *Manager) deploy(ctx context.Context, man Manifest, module []byte, native wasm.NativeFunc) (Info, error) {
	man, err := man.normalized()
	if err != nil {
		return Info{}, err
	}
	topics := append([]string{man.Input}, man.Outputs...)
	if man.DLQ != "" {
		topics = append(topics, man.DLQ)
	}
	for _, t := range topics {
		if _, err := m.broker.EnsureTopic(ctx, t); err != nil {
			return Info{}, fmt.Errorf("functions: topic %s: %w", t, err)
		}
	}
	if m.cfg.Cluster != nil && native == nil {
		if m.isClosed() {
			return Info{}, ErrClosed
		}
		return m.deployCluster(ctx, man, module)
	}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Info{}, ErrClosed
	}
	f, existed := m.fns[man.Name]
	if !existed {
		f = m.newFunction(man.Name)
		m.fns[man.Name] = f
		f.dep.State = "" // invisible to List until deployed
	}
	m.mu.Unlock()

	f.op.Lock()
	defer f.op.Unlock()
	if f.deleted { // deleted while we waited
		return Info{}, fmt.Errorf("%w: %q was deleted during the deploy", ErrNotFound, man.Name)
	}
	old := f.dep
	dep := deployment{Manifest: man, Version: old.Version + 1, State: StateRunning, Deployed: time.Now().UTC(), native: native}
	if native != nil {
		dep.Module = "native"
	} else {
		dep.Module = wasm.Hash(module)
	}
	if dep.Manifest.Start == "" {
		dep.Manifest.Start = old.Manifest.Start // where partitions added later start
	}
	proc, pool, mod, err := m.newProcessor(ctx, dep, module, f.log)
	if err != nil {
		if old.State == "" {
			m.mu.Lock()
			delete(m.fns, man.Name)
			m.mu.Unlock()
		}
		return Info{}, err
	}
	if native == nil {
		if err := m.store.putModule(dep.Module, module); err != nil {
			m.closeProcessor(pool, mod)
			return Info{}, err
		}
	}
	m.stopWorkersLocked(f)
	m.releaseLocked(f)
	if old.State != "" && man.Start != "" {
		if err := m.resetOffsets(dep, man.Start); err != nil {
			m.closeProcessor(pool, mod)
			return Info{}, err
		}
	}
	if native == nil {
		if err := m.store.putDeployment(dep); err != nil {
			m.closeProcessor(pool, mod)
			return Info{}, err
		}
	}
	f.mu.Lock()
	f.dep, f.proc, f.pool, f.mod = dep, proc, pool, mod
	f.mu.Unlock()
	f.log.printf("version %d deployed (module %s)", dep.Version, short(dep.Module))
	m.logger.Info("function deployed", "function", man.Name, "version", dep.Version, "module", short(dep.Module))
	m.syncWorkersLocked(f)
	m.gcModules()
	return m.info(f), nil
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// newProcessor compiles the module (or wraps the native function) and makes
// its instance pool, which validates the module by running it once.
func (m *Manager) newProcessor(ctx context.Context, dep deployment, module []byte, log *logRing) (wasm.Processor, *wasm.Pool, *wasm.Module, error) {
	if dep.native != nil {
		return wasm.Native(dep.native), nil, nil, nil
	}
	if module == nil {
		var err error
		if module, err = m.store.module(dep.Module); err != nil {
			return nil, nil, nil, err
		}
	}
	mod, err := m.rt.Compile(ctx, module)
	if err != nil {
		return nil, nil, nil, err
	}
	man := dep.Manifest
	env := maps.Clone(man.Env)
	if env == nil {
		env = map[string]string{}
	}
	env["WISP_FUNCTION"] = man.Name
	env["WISP_FUNCTION_VERSION"] = strconv.Itoa(dep.Version)
	env["WISP_INPUT_TOPIC"] = man.Input
	env["WISP_OUTPUT_TOPICS"] = strings.Join(man.Outputs, ",")
	pool, err := mod.NewPool(ctx, wasm.PoolConfig{
		Name: man.Name, Env: env,
		MemoryLimit:  uint64(man.Limits.MemoryMB) << 20,
		Timeout:      man.Limits.Timeout,
		MaxInstances: man.Limits.Instances,
		Stdout:       streamWriter{log, StreamStdout},
		Stderr:       streamWriter{log, StreamStderr},
	})
	if err != nil {
		mod.Close(context.Background())
		return nil, nil, nil, err
	}
	return pool, pool, mod, nil
}

func (m *Manager) closeProcessor(pool *wasm.Pool, mod *wasm.Module) {
	if pool != nil {
		pool.Close(context.Background())
	}
	if mod != nil {
		mod.Close(context.Background())
	}
}

// releaseLocked drops the function's instances and compiled module (they
// hold memory); f.op must be held and the workers stopped.
func (m *Manager) releaseLocked(f *function) {
	f.mu.Lock()
	pool, mod := f.pool, f.mod
	f.proc, f.pool, f.mod = nil, nil, nil
	f.mu.Unlock()
	m.closeProcessor(pool, mod)
}

// startLocked makes the processor if needed and starts the workers; f.op
// must be held.
func (m *Manager) startLocked(ctx context.Context, f *function) error {
	f.mu.Lock()
	dep, proc := f.dep, f.proc
	f.mu.Unlock()
	if proc == nil {
		if dep.native == nil && dep.Module == "native" {
			return errors.New("a native function does not survive a restart: deploy it again")
		}
		p, pool, mod, err := m.newProcessor(ctx, dep, nil, f.log)
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.proc, f.pool, f.mod = p, pool, mod
		f.mu.Unlock()
	}
	m.syncWorkersLocked(f)
	return nil
}

// syncWorkersLocked starts a worker for every input partition this node
// leads and stops the workers of partitions it no longer leads: the seam
// where workers follow partition leadership. f.op must be held.
func (m *Manager) syncWorkersLocked(f *function) {
	f.mu.Lock()
	dep, proc := f.dep, f.proc
	f.mu.Unlock()
	if dep.State != StateRunning || proc == nil {
		return
	}
	info, err := m.broker.Topic(dep.Manifest.Input)
	if err != nil {
		return // the scanner tries again; a deleted input is waited for
	}
	for _, pi := range info.Partitions {
		p := pi.Partition
		lead := m.cfg.Leads(dep.Manifest.Input, p)
		f.mu.Lock()
		w, running := f.workers[p]
		f.mu.Unlock()
		switch {
		case lead && !running:
			m.startWorkerLocked(f, p)
		case !lead && running:
			m.stopWorker(f, p, w)
		}
	}
}

// startWorkerLocked starts the worker of input partition p; f.op must be
// held.
func (m *Manager) startWorkerLocked(f *function, p int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	gen := f.gen
	spec := runSpec{
		name: f.name, group: GroupID(f.name), manifest: f.dep.Manifest, proc: f.proc, log: f.log, stats: &f.stats,
		fail: func(err error) { m.failAsync(f, gen, err) },
	}
	w := newWorker(m, spec, p)
	f.workers[p] = w
	go w.run()
}

func (m *Manager) stopWorker(f *function, p int32, w *worker) {
	close(w.stop)
	<-w.done
	f.mu.Lock()
	if f.workers[p] == w {
		delete(f.workers, p)
	}
	f.mu.Unlock()
}

// stopWorkersLocked stops every worker of f and waits for them; f.op must
// be held. It bumps f.gen, so that a failure reported by a stopping worker
// is ignored.
func (m *Manager) stopWorkersLocked(f *function) {
	f.mu.Lock()
	f.gen++
	ws := f.workers
	f.workers = map[int32]*worker{}
	f.mu.Unlock()
	for _, w := range ws {
		close(w.stop)
	}
	for _, w := range ws {
		<-w.done
	}
}

// failAsync puts f in state failed. It is called by a worker, which
// returns right after, so the work happens on another goroutine (stopping
// the workers waits for the caller).
func (m *Manager) failAsync(f *function, gen int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f.op.Lock()
		defer f.op.Unlock()
		f.mu.Lock()
		stale := f.gen != gen || f.deleted
		f.mu.Unlock()
		if !stale {
			m.failLocked(f, err)
		}
	}()
}

// failLocked stops f and records it as failed; f.op must be held.
func (m *Manager) failLocked(f *function, err error) {
	m.stopWorkersLocked(f)
	m.releaseLocked(f)
	f.mu.Lock()
	f.dep.State, f.dep.Error = StateFailed, err.Error()
	dep := f.dep
	f.mu.Unlock()
	f.log.printf("function failed: %v", err)
	m.logger.Warn("function failed", "function", f.name, "err", err)
	if dep.native == nil && m.cfg.Cluster != nil {
		m.reportFailed(dep)
	} else if dep.native == nil {
		if perr := m.store.putDeployment(dep); perr != nil {
			m.logger.Error("function state not saved", "function", f.name, "err", perr)
		}
	}
}

// Pause stops the function's workers; they resume from the committed
// offsets on Resume (also after a restart).
func (m *Manager) Pause(ctx context.Context, name string) error {
	return m.setState(ctx, name, StatePaused)
}

// Resume restarts a paused or failed function.
func (m *Manager) Resume(ctx context.Context, name string) error {
	return m.setState(ctx, name, StateRunning)
}

func (m *Manager) setState(ctx context.Context, name string, to State) error {
	f, err := m.lookup(name)
	if err != nil {
		return err
	}
	if m.cfg.Cluster != nil && !f.isNative() {
		return m.setStateCluster(ctx, f, to)
	}
	f.op.Lock()
	defer f.op.Unlock()
	f.mu.Lock()
	if f.deleted {
		f.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	from := f.dep.State
	f.mu.Unlock()
	if from == to {
		return nil
	}
	m.stopWorkersLocked(f)
	if to != StateRunning {
		m.releaseLocked(f)
	}
	f.mu.Lock()
	f.dep.State, f.dep.Error = to, ""
	dep := f.dep
	f.mu.Unlock()
	if dep.native == nil {
		if err := m.store.putDeployment(dep); err != nil {
			return err
		}
	}
	f.log.printf("%s (was %s)", to, from)
	if to == StateRunning {
		if err := m.startLocked(ctx, f); err != nil {
			m.failLocked(f, err)
			return err
		}
	}
	return nil
}

// Delete stops and removes the function, its stored deployment and its
// committed offsets. Its outputs stay in their topics.
func (m *Manager) Delete(ctx context.Context, name string) error {
	f, err := m.lookup(name)
	if err != nil {
		return err
	}
	if m.cfg.Cluster != nil && !f.isNative() {
		return m.deleteCluster(ctx, name)
	}
	f.op.Lock()
	defer f.op.Unlock()
	if m.forgetLocked(f) {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if !f.isNative() {
		if err := m.store.deleteDeployment(name); err != nil {
			return err
		}
	}
	if err := m.offsets.DeleteGroup(ctx, GroupID(name)); err != nil {
		m.logger.Warn("function offsets not deleted", "function", name, "err", err)
	}
	f.log.closeFollowers()
	m.logger.Info("function deleted", "function", name)
	m.gcModules()
	return nil
}

// forgetLocked stops f's workers, releases its module and removes it from
// the manager (unless a newer function took its name), and reports whether
// it had been deleted already. f.op must be held.
func (m *Manager) forgetLocked(f *function) (already bool) {
	m.stopWorkersLocked(f)
	m.releaseLocked(f)
	f.mu.Lock()
	already = f.deleted
	f.deleted = true
	f.mu.Unlock()
	m.mu.Lock()
	if m.fns[f.name] == f {
		delete(m.fns, f.name)
	}
	m.mu.Unlock()
	return already
}

func isGroupNotFound(err error) bool { return errors.Is(err, kerr.GroupIDNotFound) }

// gcModules deletes stored modules no deployment uses.
func (m *Manager) gcModules() {
	m.mu.Lock()
	inUse := map[string]bool{}
	fns := slices.Collect(maps.Values(m.fns))
	m.mu.Unlock()
	for _, f := range fns {
		f.mu.Lock()
		inUse[f.dep.Module] = true
		f.mu.Unlock()
	}
	m.store.gcModules(inUse)
}

// resetOffsets moves every input partition's committed offset to start,
// keeping each partition's producer id and epoch (so that epochs only grow).
func (m *Manager) resetOffsets(dep deployment, start string) error {
	pos, err := parseStart(start)
	if err != nil {
		return err
	}
	gid := GroupID(dep.Manifest.Name)
	info, err := m.broker.Topic(dep.Manifest.Input)
	if err != nil {
		return err
	}
	cur, err := m.fetchOffsets(gid, nil)
	if err != nil {
		return err
	}
	commits := map[group.TopicPartition]group.OffsetCommit{}
	for _, pi := range info.Partitions {
		tp := group.TopicPartition{Topic: dep.Manifest.Input, Partition: pi.Partition}
		off, err := pos.resolve(m.broker, tp.Topic, tp.Partition)
		if err != nil {
			return err
		}
		st := commitState{pid: -1, epoch: -1}
		if oc, ok := cur[tp]; ok {
			st, _ = parseCommit(oc)
		}
		st.next, st.end = off, -1
		commits[tp] = group.OffsetCommit{Offset: off, LeaderEpoch: -1, Metadata: st.metadata()}
	}
	return m.commitOffsets(gid, commits)
}

// scan follows new input partitions and leadership changes.
func (m *Manager) scan() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stopScan:
			return
		case <-t.C:
		case <-m.kick:
		}
		m.mu.Lock()
		fns := slices.Collect(maps.Values(m.fns))
		m.mu.Unlock()
		for _, f := range fns {
			if f.op.TryLock() { // busy with a deploy or a failure: next time
				m.syncWorkersLocked(f)
				f.op.Unlock()
			}
		}
	}
}

// List describes every function, sorted by name.
func (m *Manager) List() []Info {
	m.mu.Lock()
	fns := slices.Collect(maps.Values(m.fns))
	m.mu.Unlock()
	out := make([]Info, 0, len(fns))
	for _, f := range fns {
		if i := m.info(f); i.State != "" {
			out = append(out, i)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Info describes one function.
func (m *Manager) Info(name string) (Info, error) {
	f, err := m.lookup(name)
	if err != nil {
		return Info{}, err
	}
	i := m.info(f)
	if i.State == "" {
		return Info{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return i, nil
}

func (m *Manager) info(f *function) Info {
	d := m.detail(f, false)
	return d.Info
}

// Describe details one function, partition by partition.
func (m *Manager) Describe(name string) (Detail, error) {
	f, err := m.lookup(name)
	if err != nil {
		return Detail{}, err
	}
	d := m.detail(f, true)
	if d.State == "" {
		return Detail{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return d, nil
}

func (m *Manager) detail(f *function, parts bool) Detail {
	f.mu.Lock()
	dep, pool := f.dep, f.pool
	workers := maps.Clone(f.workers)
	f.mu.Unlock()
	man := dep.Manifest
	d := Detail{
		Info: Info{Name: f.name, Input: man.Input, Outputs: slices.Clone(man.Outputs), DLQ: man.DLQ, State: dep.State,
			Error: dep.Error, Version: dep.Version, Module: dep.Module, Deployed: dep.Deployed,
			RecordsIn: f.stats.recordsIn.Load(), RecordsOut: f.stats.recordsOut.Load(),
			Errors: f.stats.errors.Load(), DeadLettered: f.stats.deadLettered.Load()},
		Manifest: man, Group: GroupID(f.name),
	}
	if pool != nil {
		d.Instances = pool.Stats()
	}
	// Shown without waiting long for a coordinator that is moving.
	committed, _ := m.fetchOffsetsWithin(d.Group, nil, 3*time.Second)
	info, err := m.broker.Topic(man.Input)
	if err != nil {
		return d
	}
	var lastErrAt time.Time
	for _, pi := range info.Partitions {
		ps := PartitionStatus{Partition: pi.Partition, Committed: -1, HighWatermark: pi.HighWatermark, ProducerID: -1, ProducerEpoch: -1}
		lag := pi.HighWatermark - pi.LogStartOffset
		if oc, ok := committed[group.TopicPartition{Topic: man.Input, Partition: pi.Partition}]; ok {
			st, _ := parseCommit(oc)
			ps.Committed, ps.ProducerID, ps.ProducerEpoch = st.next, st.pid, st.epoch
			if st.end >= 0 {
				ps.PendingEnd = st.end
			}
			lag = pi.HighWatermark - max(st.next, pi.LogStartOffset)
		}
		ps.Lag = max(lag, 0)
		d.Lag += ps.Lag
		if w := workers[pi.Partition]; w != nil {
			w.mu.Lock()
			ps.Worker, ps.LastError, ps.LastErrorAt = w.state, w.lastErr, w.lastErrAt
			w.mu.Unlock()
			ps.RecordsIn, ps.RecordsOut = w.stats.recordsIn.Load(), w.stats.recordsOut.Load()
			ps.Errors, ps.DeadLettered = w.stats.errors.Load(), w.stats.deadLettered.Load()
			if d.Error == "" && ps.LastError != "" && ps.LastErrorAt.After(lastErrAt) {
				lastErrAt = ps.LastErrorAt
			}
		}
		if parts {
			d.Partitions = append(d.Partitions, ps)
		}
	}
	if d.Error == "" && !lastErrAt.IsZero() {
		for _, w := range workers {
			w.mu.Lock()
			if w.lastErrAt.Equal(lastErrAt) {
				d.Error = w.lastErr
			}
			w.mu.Unlock()
		}
	}
	return d
}

// Logs returns the function's kept log lines at or after since.
func (m *Manager) Logs(name string, since time.Time) ([]LogLine, error) {
	f, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	return f.log.since(since), nil
}

// Follow streams the function's new log lines until cancel is called or the
// function is deleted (the channel is then closed). A follower that falls
// behind misses lines rather than slowing the function.
func (m *Manager) Follow(name string) (lines <-chan LogLine, cancel func(), err error) {
	f, err := m.lookup(name)
	if err != nil {
		return nil, nil, err
	}
	lines, cancel = f.log.follow()
	return lines, cancel, nil
}

// Module returns the module bytes of the function's current version.
func (m *Manager) Module(name string) ([]byte, error) {
	f, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	dep := f.dep
	f.mu.Unlock()
	if dep.native != nil || dep.Module == "native" {
		return nil, fmt.Errorf("functions: %q is a native function, without a module", name)
	}
	return m.store.module(dep.Module)
}
