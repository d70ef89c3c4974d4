package functions

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/bus/group"
	"github.com/wispbus/wisp/internal/batch"
	"github.com/wispbus/wisp/wasm"
)

// Exactly-once output (docs/functions.md has the full argument).
//
// A worker runs one input partition as a sequence of units. A unit is a
// range [next, end) of input offsets whose outputs are written as at most
// one record batch per output partition, all with the same producer id and
// producer epoch and each starting at sequence 0. Before writing a unit's
// outputs, the worker commits its input offset `next` together with the
// metadata "(pid, epoch, end)": the intent. After a crash, a worker that
// finds an intent re-runs exactly [next, end) with exactly (pid, epoch):
// the same batches again, which each output partition recognises as
// duplicates of its last batch from that producer and drops. Each new unit
// takes the next epoch (a fresh id after 32767), so its batches start a new
// sequence that no partition confuses with an earlier unit's. The commit
// that records a unit as done is folded into the next unit's intent (or
// made when the partition goes idle, or the worker stops).

// maxEpoch bounds producer epochs; past it a unit gets a fresh producer id.
const maxEpoch = 32766

// commitState is what a worker persists in its input partition's committed
// offset and metadata, atomically.
type commitState struct {
	next  int64 // committed offset: the first input offset not known written
	pid   int64 // producer id of the last or pending unit; -1: none yet
	epoch int16 // its epoch
	end   int64 // > next: the unit [next, end) is pending; -1: none
}

const metaPrefix = "wisp.fn/1"

func (s commitState) metadata() string {
	return fmt.Sprintf("%s pid=%d epoch=%d end=%d", metaPrefix, s.pid, s.epoch, s.end)
}

func parseCommit(oc group.OffsetCommit) (commitState, bool) {
	s := commitState{next: oc.Offset, pid: -1, epoch: -1, end: -1}
	f := strings.Fields(oc.Metadata)
	if len(f) != 4 || f[0] != metaPrefix {
		return s, false
	}
	var err error
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		var n int64
		if n, err = strconv.ParseInt(v, 10, 64); err != nil {
			return s, false
		}
		switch k {
		case "pid":
			s.pid = n
		case "epoch":
			s.epoch = int16(n)
		case "end":
			s.end = n
		}
	}
	if s.end <= s.next {
		s.end = -1
	}
	return s, true
}

// Worker states shown by Describe.
const (
	workerStarting = "starting"
	workerRunning  = "running"
	workerIdle     = "idle"
	workerRetrying = "retrying"
	workerWaiting  = "waiting" // for its input topic or an output topic
	workerStopped  = "stopped"
)

// runSpec is what a worker runs: fixed for its lifetime (a redeploy stops
// the workers and starts new ones).
type runSpec struct {
	name     string
	group    string
	manifest Manifest
	proc     wasm.Processor
	log      *logRing
	stats    *counters // the function's totals
	fail     func(error)
}

type counters struct {
	recordsIn, recordsOut, errors, deadLettered atomic.Int64
}

// outcome is one input record's final result.
type outcome struct {
	err     string
	outputs []wasm.Output
}

type topicMeta struct {
	partitions int32
	maxBytes   int
	fetched    time.Time
}

type worker struct {
	m    *Manager
	spec runSpec
	p    int32
	tp   group.TopicPartition

	stop chan struct{} // closed: finish the current unit's writes, then return
	done chan struct{} // closed when run returns

	// leaderEpoch is the input partition's leader epoch when this worker
	// loaded its state: its commits carry it, and the coordinator refuses
	// them once a worker of a later epoch (on a new leader) has committed
	// (group.FencedGroupPrefix), so a worker on a deposed leader that has
	// not noticed yet cannot overwrite its successor's progress.
	leaderEpoch int32
	st          commitState
	dirty       bool // st advanced past the last commit
	failures    int  // consecutive failing batches
	buf         []batch.Record
	res         wasm.Results
	outcomes    []outcome
	topics      map[string]*topicMeta

	stats     counters
	mu        sync.Mutex // guards state, lastErr, lastErrAt
	state     string
	lastErr   string
	lastErrAt time.Time
}

func newWorker(m *Manager, spec runSpec, p int32) *worker {
	return &worker{m: m, spec: spec, p: p, tp: group.TopicPartition{Topic: spec.manifest.Input, Partition: p},
		stop: make(chan struct{}), done: make(chan struct{}), topics: map[string]*topicMeta{},
		st: commitState{pid: -1, epoch: -1, end: -1}, state: workerStarting}
}

func (w *worker) setState(s string) {
	w.mu.Lock()
	w.state = s
	w.mu.Unlock()
}

func (w *worker) noteError(err error) {
	w.mu.Lock()
	w.lastErr, w.lastErrAt = err.Error(), time.Now()
	w.mu.Unlock()
}

// errStopped ends run when stop is closed.
var errStopped = errors.New("functions: worker stopped")

// stopCtx is canceled when the worker is asked to stop (between units) or
// the manager closes.
func (w *worker) stopCtx() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(w.m.ctx)
	go func() {
		select {
		case <-w.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx, cancel
}

func (w *worker) stopping() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

func (w *worker) run() {
	defer close(w.done)
	defer w.setState(workerStopped)
	ctx, cancel := w.stopCtx()
	defer cancel()
	for {
		err := w.load(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		w.retry(ctx, fmt.Errorf("load committed offset: %w", err), false)
	}
	for {
		if w.stopping() || ctx.Err() != nil {
			w.commitDirty()
			return
		}
		err := w.step(ctx)
		switch {
		case err == nil:
		case errors.Is(err, errStopped) || ctx.Err() != nil:
			w.commitDirty()
			return
		case errors.Is(err, errCrash):
			return // a test's simulated crash: no more commits
		case errors.Is(err, kerr.FencedLeaderEpoch):
			// A worker of a later leader epoch committed: what this one
			// holds in memory is stale. Start over from the committed
			// state, as a new worker would (if this node leads again),
			// or wait to be stopped.
			w.noteError(err)
			sleep(ctx, w.m.cfg.RetryBackoff)
			if lerr := w.load(ctx); lerr != nil && ctx.Err() == nil {
				w.noteError(lerr)
			}
		default:
			// A leader or coordinator moving is waited out, not counted.
			if w.retry(ctx, err, !w.m.transientErr(err)) {
				return // the function failed
			}
		}
	}
}

// retry records a failing batch and waits out the backoff. It reports
// whether the failure count reached the limit, in which case the function
// has been failed and the worker must return.
func (w *worker) retry(ctx context.Context, err error, count bool) bool {
	w.noteError(err)
	w.spec.log.printf("partition %d: %v", w.p, err)
	if count {
		w.failures++
		if w.failures >= w.spec.manifest.Limits.MaxFailures {
			w.spec.fail(fmt.Errorf("partition %d: %d consecutive failing batches, last: %w", w.p, w.failures, err))
			return true
		}
	}
	w.setState(workerRetrying)
	d := w.m.cfg.RetryBackoff << min(max(w.failures-1, 0), 16)
	sleep(ctx, min(d, w.m.cfg.MaxBackoff))
	return false
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// load reads the committed state, or starts the partition at the
// manifest's start position with a fresh producer id and commits that, so
// that a restart before the first unit does not re-resolve "end".
func (w *worker) load(ctx context.Context) error {
	w.leaderEpoch = -1
	if info, err := w.m.broker.Topic(w.tp.Topic); err == nil && int(w.p) < len(info.Partitions) {
		w.leaderEpoch = info.Partitions[w.p].LeaderEpoch
	}
	got, err := w.m.fetchOffsets(w.spec.group, []group.TopicPartition{w.tp})
	if err != nil {
		return err
	}
	if oc, ok := got[w.tp]; ok {
		st, ok := parseCommit(oc)
		if !ok { // committed by something else (e.g. kafka-consumer-groups --reset-offsets)
			st = commitState{next: oc.Offset, pid: -1, epoch: -1, end: -1}
		}
		w.st = st
		if st.end >= 0 {
			w.spec.log.printf("partition %d: resuming the unit at offsets [%d, %d) interrupted by a restart", w.p, st.next, st.end)
		}
		return nil
	}
	pos, err := parseStart(w.spec.manifest.Start)
	if err != nil {
		return err
	}
	off, err := pos.resolve(w.m.broker, w.tp.Topic, w.p)
	if err != nil {
		return err
	}
	w.st = commitState{next: off, pid: -1, epoch: -1, end: -1}
	return w.commit(w.st)
}

func (w *worker) commit(st commitState) error {
	err := w.m.commitOffsets(w.spec.group, map[group.TopicPartition]group.OffsetCommit{
		w.tp: {Offset: st.next, LeaderEpoch: w.leaderEpoch, Metadata: st.metadata()},
	})
	if err != nil {
		return fmt.Errorf("commit offset %d: %w", st.next, err)
	}
	return nil
}

// commitDirty records progress made since the last commit (on stop, or
// when the partition goes idle).
func (w *worker) commitDirty() {
	if !w.dirty {
		return
	}
	if err := w.commit(w.st); err != nil {
		w.noteError(err)
		return
	}
	w.dirty = false
}

// step runs one unit: fetch, process, intent, write.
func (w *worker) step(ctx context.Context) error {
	pending := w.st.end >= 0
	if err := w.fill(ctx); err != nil {
		return err
	}
	w.setState(workerRunning)
	recs := w.buf
	if pending {
		n := 0
		for n < len(recs) && recs[n].Offset < w.st.end {
			n++
		}
		recs = recs[:n]
	}
	if !pending && len(recs) > w.m.cfg.MaxBatchRecords {
		recs = recs[:w.m.cfg.MaxBatchRecords]
	}
	if err := w.runPolicy(ctx, recs); err != nil {
		return err
	}
	u, err := w.assemble(recs)
	if err != nil {
		return err
	}
	st := w.st
	if !pending {
		st.epoch++
		if st.pid < 0 || st.epoch > maxEpoch {
			pid, _, err := w.m.broker.InitProducerID(w.m.ctx)
			if err != nil {
				return fmt.Errorf("allocate a producer id: %w", err)
			}
			st.pid, st.epoch = pid, 0
		}
		st.end = u.end
		if !w.m.cfg.Leads(w.tp.Topic, w.p) {
			// Leadership moved: leave the partition to the new leader's
			// worker rather than race it with a unit of our own (the
			// scanner stops this worker, or it resumes if it leads again).
			return fmt.Errorf("%w: %s/%d moved to another node", kerr.NotLeaderForPartition, w.tp.Topic, w.p)
		}
		if err := w.commit(st); err != nil { // the intent
			return err
		}
		w.st, w.dirty = st, false
	}
	// From here the unit is committed to: finish it even if asked to stop
	// (only the manager's context ends it), so that a redeploy does not
	// leave a unit for the next version to replay.
	if err := w.write(u); err != nil {
		return err
	}
	w.failures = 0
	w.stats.recordsIn.Add(int64(u.in))
	w.stats.recordsOut.Add(int64(u.out))
	w.stats.errors.Add(int64(u.failed))
	w.stats.deadLettered.Add(int64(u.dead))
	w.spec.stats.recordsIn.Add(int64(u.in))
	w.spec.stats.recordsOut.Add(int64(u.out))
	w.spec.stats.errors.Add(int64(u.failed))
	w.spec.stats.deadLettered.Add(int64(u.dead))
	// Drop the unit's records from the buffer.
	i := 0
	for i < len(w.buf) && w.buf[i].Offset < u.end {
		i++
	}
	w.buf = w.buf[i:]
	w.st.next, w.st.end, w.dirty = u.end, -1, true
	return nil
}

// fill makes sure w.buf holds records at w.st.next or later, waiting for
// them while the partition is idle. For a pending unit it reads up to the
// unit's end, so that the unit is replayed whole.
func (w *worker) fill(ctx context.Context) error {
	for {
		if w.st.end >= 0 && w.st.end <= w.st.next {
			w.st.end = -1
		}
		from := w.st.next
		if n := len(w.buf); n > 0 {
			if w.st.end < 0 || w.buf[n-1].Offset >= w.st.end-1 {
				return nil
			}
			from = w.buf[n-1].Offset + 1 // the rest of a pending unit
		}
		watch, err := w.m.broker.Watch(w.tp.Topic, w.p)
		var res bus.FetchResult
		if err == nil {
			res, err = w.m.broker.Fetch(ctx, w.tp.Topic, w.p, from, int32(w.m.cfg.MaxBatchBytes))
		}
		switch {
		case errors.Is(err, kerr.OffsetOutOfRange) && len(w.buf) == 0:
			w.outOfRange(res)
			continue
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			// The input topic is gone (or not there yet): wait for it,
			// without counting it as the function's failure.
			w.noteError(err)
			w.setState(workerWaiting)
			sleep(ctx, w.m.cfg.IdlePoll)
			if ctx.Err() != nil {
				return errStopped
			}
			continue
		case err != nil:
			if ctx.Err() != nil {
				return errStopped
			}
			return err
		}
		before := len(w.buf)
		if err := w.decode(res.Batches, from); err != nil {
			return fmt.Errorf("read input at offset %d: %w", from, err)
		}
		if len(w.buf) > before {
			continue // loop: done, or read more of a pending unit
		}
		if w.st.end >= 0 && res.HighWatermark >= w.st.end {
			// The rest of the pending unit's records are gone (compaction,
			// retention): the unit is what is buffered.
			if len(w.buf) > 0 {
				return nil
			}
			w.st.next, w.st.end, w.dirty = w.st.end, -1, true
			continue
		}
		// Idle: record progress, then wait for new data.
		w.commitDirty()
		w.failures = 0
		w.setState(workerIdle)
		t := time.NewTimer(w.m.cfg.IdlePoll)
		select {
		case <-watch:
		case <-t.C:
		case <-w.stop:
		case <-ctx.Done():
		}
		t.Stop()
		if w.stopping() || ctx.Err() != nil {
			return errStopped
		}
	}
}

func (w *worker) outOfRange(res bus.FetchResult) {
	switch {
	case w.st.next < res.LogStartOffset:
		w.spec.log.printf("partition %d: offsets [%d, %d) were deleted by retention before the function read them",
			w.p, w.st.next, res.LogStartOffset)
		w.st.next = res.LogStartOffset
	default:
		w.spec.log.printf("partition %d: committed offset %d is past the end of the partition (%d); was the topic recreated? Continuing from %d",
			w.p, w.st.next, res.HighWatermark, res.HighWatermark)
		w.st.next = res.HighWatermark
	}
	w.st.end, w.dirty, w.buf = -1, true, nil
}

// decode appends the fetched records at or after from to w.buf.
func (w *worker) decode(raw []byte, from int64) error {
	return batch.Each(raw, func(h batch.Header, b []byte) error {
		if h.IsControl() || h.LastOffset() < from {
			return nil
		}
		recs, err := batch.Records(b)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Offset >= from {
				w.buf = append(w.buf, r)
			}
		}
		return nil
	})
}

// runPolicy runs recs through the function with the failure policy and
// leaves one outcome per record in w.outcomes: retry a failing batch with
// backoff; then, with a dead-letter topic, bisect it down to the records
// that fail; without one, keep retrying (each attempt counts as a failing
// batch, and MaxFailures of them fail the function).
func (w *worker) runPolicy(ctx context.Context, recs []batch.Record) error {
	in := &wasm.Batch{Topic: w.tp.Topic, Partition: w.p, Records: recs}
	lim := w.spec.manifest.Limits
	for attempt := 0; ; attempt++ {
		err := w.spec.proc.Process(ctx, in, &w.res)
		if err == nil {
			w.outcomes = w.outcomes[:0]
			for _, r := range w.res.Records {
				w.outcomes = append(w.outcomes, outcome{err: r.Err, outputs: r.Outputs})
			}
			return nil
		}
		if !wasm.IsModuleFailure(err) {
			if ctx.Err() != nil {
				return errStopped
			}
			return err
		}
		err = fmt.Errorf("batch of %d records at offsets %d-%d failed: %w", len(recs), recs[0].Offset, recs[len(recs)-1].Offset, err)
		if w.spec.manifest.DLQ == "" || attempt < lim.Retries {
			if w.retry(ctx, err, true) {
				return errStopped
			}
			if ctx.Err() != nil {
				return errStopped
			}
			continue
		}
		w.noteError(err)
		w.spec.log.printf("partition %d: %v; bisecting to find the failing records", w.p, err)
		w.outcomes = append(w.outcomes[:0], make([]outcome, len(recs))...)
		return w.bisect(ctx, in, 0, recs)
	}
}

// bisect splits a failed batch in halves until the failing records are
// isolated; each gets the failure as its error. Outputs of the halves that
// succeed are kept (each half has its own Results, which its outputs alias).
func (w *worker) bisect(ctx context.Context, in *wasm.Batch, base int, recs []batch.Record) error {
	mid := len(recs) / 2
	for _, half := range [][2]int{{0, mid}, {mid, len(recs)}} {
		sub := recs[half[0]:half[1]]
		if len(sub) == 0 {
			continue
		}
		res := new(wasm.Results)
		err := w.spec.proc.Process(ctx, &wasm.Batch{Topic: in.Topic, Partition: in.Partition, Records: sub}, res)
		switch {
		case err == nil:
			for i, r := range res.Records {
				w.outcomes[base+half[0]+i] = outcome{err: r.Err, outputs: r.Outputs}
			}
		case !wasm.IsModuleFailure(err):
			if ctx.Err() != nil {
				return errStopped
			}
			return err
		case len(sub) == 1:
			w.outcomes[base+half[0]] = outcome{err: err.Error()}
		default:
			if err := w.bisect(ctx, in, base+half[0], sub); err != nil {
				return err
			}
		}
	}
	return nil
}
