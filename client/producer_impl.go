package client

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/quic-go/quic-go"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/internal/batch"
	"github.com/wispbus/wisp/transport/wire"
)

// The producer.
//
// Records are encoded into their partition's open batch as Produce is
// called (on the caller's goroutine). A batch is sealed when full, or when
// it has lingered or on Flush if its partition has a free in-flight slot
// (else it keeps growing until one frees, as franz-go cuts batches when it
// builds a request); one sender goroutine sends sealed batches on the
// produce stream to the partition's leader (one stream per node, opened on
// a goroutine of its own so that a node that does not answer holds up no
// other), at most MaxInflight per partition, and one reader goroutine per
// stream matches answers to batches. Callbacks run on a callback
// goroutine, in completion order, which is partition order (ProduceSync's
// own promises may run on the goroutine that completes them, in the same
// order: see complete).
//
// Per-record costs are kept off the caller's goroutine where they can be:
// one monotonic clock read per record (nowLocked), no allocation (batch
// buffers and record lists are pooled), no lock besides producer.mu.
//
// Leadership: a partition's leader comes from the client's metadata cache
// (metadata.go). A partition sends only while none of its batches is in
// flight on another node's stream, so a leader change never reorders it:
// the batches in flight to the old leader come back (NOT_LEADER, a broken
// or given-up stream) and are resent, in order, to the new one. A stream
// whose oldest request is unanswered for produceStall while the metadata
// names another leader, or for the produce deadline (RequestTimeout plus a
// margin), is given up and its connection dropped.
//
// Idempotence and ordering: a batch's producer id and sequence are
// assigned when it is first sent and its bytes never change after, so a
// resent batch is recognised by the broker as a duplicate when it was
// already written. When the stream breaks, every batch in flight goes back,
// in order, in front of the partition's queue and is resent on the next
// stream. When one batch of a partition fails retriably the later ones in
// flight come back with OutOfOrderSequenceNumber; the partition sends
// nothing until all are back, then resends them in order. A batch that
// fails for good leaves a gap in the sequence, so its partition moves to a
// fresh producer id (the broker tracks sequences per partition and
// producer id) and the batches after it are renumbered from 0.
//
// Lock order: producer.mu, then clientState.mu, then metaCache.mu. No lock
// is held while a stream is written or read.

// Header and batch.RecordHeader have the same layout, so record headers
// are handed to the batch encoder without copying. This conversion stops
// compiling if the two types diverge.
var _ = batch.RecordHeader(Header{})

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type producer struct {
	c   *Client
	cfg *cfg

	mu       sync.Mutex
	space    *sync.Cond // broadcast when buffer space frees up or the buffer empties
	bufRecs  int
	bufBytes int64
	topics   map[string]*ptopic
	last     *ptopic // the topic of the last record: most producers write one topic
	clock    time.Time
	parts    []*ppart
	flushing int
	closed   bool
	streams  map[int32]*pstream // produce stream per leader node
	opening  map[int32]bool     // nodes whose stream is being opened
	corr     uint32
	pid      int64
	epoch    int16
	pidOK    bool

	wake chan struct{} // cap 1: something for the sender to look at

	resent atomic.Int64 // batches put back for resending (tests watch it)

	cbMu    sync.Mutex
	cbCond  *sync.Cond // the callback goroutine waits on it
	cbQueue []completion
	cbBusy  bool // promises are running (see complete): the rest wait
	cbDone  bool
}

type ptopic struct {
	name     string
	parts    []*ppart // nil until metadata is known
	pending  []precord
	loading  bool
	loadedAt time.Time
}

type ppart struct {
	topic      string
	partition  int32
	cur        *pbatch
	ready      []*pbatch // sealed, in send order
	inflight   []*pbatch // sent on the current stream, in order
	requeue    []*pbatch // came back failed while retrying, in order
	stream     *pstream  // the stream the inflight batches were sent on
	leader     int32     // the leader as of metaGen, -1 unknown
	metaGen    uint64
	stallCheck time.Time // when a slow answer may next ask for a metadata refresh
	retrying   bool
	backoff    time.Time
	pid        int64
	epoch      int16
	hasPID     bool
	lastSize   int // bytes and records of the last sealed batch, to size the next
	lastCount  int
	nextSeq    int32
	needPID    bool
}

type pbatch struct {
	part     *ppart
	recs     []precord
	buf      []byte // batch.HeaderSize bytes of header, then the records
	firstTS  int64
	maxTS    int64
	created  time.Time
	prepared bool // compressed and sized (sender only)
	encoded  bool // producer id and sequence written
	baseSeq  int32
	attempts int
	lastErr  error
	corr     uint32
	sentAt   time.Time
}

type precord struct {
	r       *Record
	promise func(*Record, error)
	size    int32 // recordSize, at most BatchMaxBytes
	// quick: promise is produceSync's, which only counts down and wakes
	// its caller, so it may run on whichever goroutine completes it.
	quick bool
}

type completion struct {
	recs []precord
	err  error
}

type pstream struct {
	node    int32
	str     *quic.Stream
	conn    *quic.Conn
	pending map[uint32]*pbatch
	dead    bool
}

func newProducer(c *Client) *producer {
	p := &producer{c: c, cfg: &c.cfg, topics: map[string]*ptopic{}, wake: make(chan struct{}, 1),
		streams: map[int32]*pstream{}, opening: map[int32]bool{}}
	p.space = sync.NewCond(&p.mu)
	p.cbCond = sync.NewCond(&p.cbMu)
	c.goFunc(p.sender)
	c.goFunc(p.callbacks)
	return p
}

func recordSize(r *Record) int64 {
	n := int64(len(r.Key) + len(r.Value) + 21)
	for _, h := range r.Headers {
		n += int64(len(h.Key) + len(h.Value) + 6)
	}
	return n
}

func (p *producer) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (c *Client) produce(ctx context.Context, rec *Record, promise func(*Record, error)) {
	if c.prod == nil {
		if promise != nil {
			promise(rec, ErrClosed)
		}
		return
	}
	c.prod.produce(ctx, rec, promise, false)
}

// produce buffers rec; quick says promise is produceSync's (precord.quick).
func (p *producer) produce(ctx context.Context, rec *Record, promise func(*Record, error), quick bool) {
	fail := func(err error) {
		if promise != nil {
			promise(rec, err)
		}
	}
	if rec.Topic == "" {
		fail(ErrNoTopic)
		return
	}
	size := recordSize(rec)
	if size+batch.HeaderSize+16 > int64(p.cfg.batchMaxBytes) {
		fail(fmt.Errorf("%w: %d bytes", ErrRecordTooLarge, size))
		return
	}
	p.mu.Lock()
	if p.bufRecs > 0 && (p.bufRecs >= p.cfg.maxBufRecs || p.bufBytes+size > p.cfg.maxBufBytes) && !p.closed {
		if err := p.waitSpaceLocked(ctx, size); err != nil {
			p.mu.Unlock()
			fail(err)
			return
		}
	}
	if p.closed {
		p.mu.Unlock()
		fail(ErrClosed)
		return
	}
	p.bufRecs++
	p.bufBytes += size
	pr := precord{r: rec, promise: promise, size: int32(size), quick: quick}
	t := p.last
	if t == nil || t.name != rec.Topic {
		t = p.topics[rec.Topic]
		if t == nil {
			t = &ptopic{name: rec.Topic}
			p.topics[rec.Topic] = t
		}
		p.last = t
	}
	if t.parts == nil {
		t.pending = append(t.pending, pr)
		p.loadLocked(t)
		p.mu.Unlock()
		return
	}
	now := p.nowLocked()
	if now.Sub(t.loadedAt) > metadataMaxAge {
		p.loadLocked(t) // refresh in the background: partitions may have been added
	}
	err := p.addLocked(t, pr, now)
	p.mu.Unlock()
	if err != nil {
		p.complete([]precord{pr}, err)
	}
}

// waitSpaceLocked waits until size more bytes and one more record fit the
// buffer, or ctx ends. p.mu is held.
func (p *producer) waitSpaceLocked(ctx context.Context, size int64) error {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.space.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	// Lingering batches must go out for space to free up.
	p.flushing++
	p.poke()
	defer func() { p.flushing-- }()
	for p.bufRecs > 0 && (p.bufRecs >= p.cfg.maxBufRecs || p.bufBytes+size > p.cfg.maxBufBytes) && !p.closed {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.space.Wait()
	}
	return nil
}

// clockRebase bounds how long record timestamps follow the monotonic clock
// from one reading of the wall clock (see nowLocked): a step of the wall
// clock shows in timestamps at most this late.
const clockRebase = 100 * time.Millisecond

// nowLocked is the time for a record: a wall-clock reading taken at most
// clockRebase ago plus the monotonic time since. time.Now reads two clocks
// and cost as much as encoding a 100-byte record (≈150 ns on the
// development VM); this reads only the monotonic one. p.mu is held.
func (p *producer) nowLocked() time.Time {
	if !p.clock.IsZero() {
		if d := time.Since(p.clock); d >= 0 && d < clockRebase {
			return p.clock.Add(d)
		}
	}
	p.clock = time.Now()
	return p.clock
}

// addLocked partitions a record and encodes it into its partition's open
// batch; now is the time of the call. p.mu is held.
func (p *producer) addLocked(t *ptopic, pr precord, now time.Time) error {
	n := int32(len(t.parts))
	part := p.cfg.partitioner.Partition(pr.r, n)
	if part < 0 || part >= n {
		return fmt.Errorf("%w: partition %d of %s (%d partitions)", kerr.UnknownTopicOrPartition, part, t.name, n)
	}
	pp := t.parts[part]
	pr.r.Partition = part
	if pr.r.Timestamp.IsZero() {
		pr.r.Timestamp = now
	}
	ts := pr.r.Timestamp.UnixMilli()
	b := pp.cur
	if b != nil && len(b.buf)+int(pr.size)+16 > p.cfg.batchMaxBytes {
		p.sealLocked(pp)
		b = nil
	}
	if b == nil {
		b = &pbatch{part: pp, created: now, firstTS: ts, maxTS: ts,
			buf: p.newBuf(pp.lastSize), recs: newRecs(pp.lastCount)}
		pp.cur = b
		p.poke()
	}
	br := batch.Record{Timestamp: ts, Key: pr.r.Key, Value: pr.r.Value,
		Headers: *(*[]batch.RecordHeader)(unsafe.Pointer(&pr.r.Headers))}
	b.buf = batch.AppendRecord(b.buf, &br, int32(len(b.recs)), b.firstTS, ts)
	b.maxTS = max(b.maxTS, ts)
	b.recs = append(b.recs, pr)
	if len(b.buf) >= p.cfg.batchMaxBytes-64 {
		p.sealLocked(pp)
	} else if p.flushing > 0 && len(b.recs) > 1 {
		p.poke() // the batch is due at once (a new batch poked already)
	}
	return nil
}

// sealLocked closes a partition's open batch and queues it. p.mu is held.
func (p *producer) sealLocked(pp *ppart) {
	b := pp.cur
	if b == nil {
		return
	}
	pp.cur = nil
	pp.lastSize, pp.lastCount = len(b.buf), len(b.recs)
	pp.ready = append(pp.ready, b)
	if ba, ok := p.cfg.partitioner.(batchAware); ok {
		ba.onBatchClosed(pp.topic, pp.partition)
	}
	p.poke()
}

// loadLocked starts loading a topic's partition count unless a load runs.
func (p *producer) loadLocked(t *ptopic) {
	if t.loading || p.closed {
		return
	}
	t.loading = true
	p.c.goFunc(func() { p.loadTopic(t) })
}

func (p *producer) loadTopic(t *ptopic) {
	deadline := time.Now().Add(p.cfg.deliveryTimout)
	var err error
	var n int32
	for attempt := 0; ; attempt++ {
		n, err = p.c.partitionCount(p.c.ctx, t.name)
		if err == nil || !IsRetryable(err) || errors.Is(err, kerr.UnknownTopicOrPartition) ||
			time.Now().After(deadline) || p.c.ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(p.cfg.retryBackoff):
		case <-p.c.ctx.Done():
		}
	}
	p.mu.Lock()
	t.loading = false
	if err != nil {
		pending := t.pending
		t.pending = nil
		if t.parts == nil {
			delete(p.topics, t.name)
			if p.last == t {
				p.last = nil
			}
		}
		p.mu.Unlock()
		if len(pending) > 0 {
			p.complete(pending, err)
		}
		return
	}
	t.loadedAt = time.Now()
	p.c.meta.use(t.name)
	for i := int32(len(t.parts)); i < n; i++ {
		pp := &ppart{topic: t.name, partition: i, leader: -1}
		t.parts = append(t.parts, pp)
		p.parts = append(p.parts, pp)
	}
	pending := t.pending
	t.pending = nil
	var failed []precord
	var ferr error
	now := p.nowLocked()
	for _, pr := range pending {
		if err := p.addLocked(t, pr, now); err != nil {
			failed, ferr = append(failed, pr), err
		}
	}
	p.mu.Unlock()
	if len(failed) > 0 {
		p.complete(failed, ferr)
	}
}

// partitionCount asks the broker for a topic's partitions, creating the
// topic if the broker auto-creates topics.
func (c *Client) partitionCount(ctx context.Context, topic string) (int32, error) {
	resp, err := c.metadata(ctx, []string{topic}, true)
	if err != nil {
		return 0, err
	}
	for _, t := range resp.Topics {
		if t.Name == topic {
			if err := checkErr(t.Err); err != nil {
				return 0, err
			}
			if len(t.Partitions) == 0 {
				return 0, fmt.Errorf("%w: %s has no partitions", kerr.UnknownTopicOrPartition, topic)
			}
			return int32(len(t.Partitions)), nil
		}
	}
	return 0, fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, topic)
}

// Batch buffers and record lists are pooled: at a million records a
// second, fresh ones made the producer the main source of garbage (a
// buffer per batch, plus 32 bytes a record for its list).
//
// bufPools[i] holds buffers of capacity at least 1<<i, i in
// [minBufShift, maxBufShift]; a buffer is put back under the largest class
// its capacity fills, and taken from the smallest class that fits the
// request, so any buffer taken is big enough.
const (
	minBufShift = 14 // 16 KiB, the smallest batch buffer
	maxBufShift = 25 // above BatchMaxBytes' largest possible value
)

var bufPools [maxBufShift + 1]sync.Pool

// newBuf returns a buffer for a batch, with room for the header; sized
// after the partition's last batch.
func (p *producer) newBuf(last int) []byte {
	want := min(p.cfg.batchMaxBytes, max(16<<10, last+last/4))
	i := max(minBufShift, bits.Len(uint(want-1)))
	if i <= maxBufShift {
		if bp, ok := bufPools[i].Get().(*[]byte); ok {
			return (*bp)[:batch.HeaderSize]
		}
		want = 1 << i
	}
	return make([]byte, batch.HeaderSize, want)
}

// release returns a finished batch's buffer to the pool. The sender is
// done with it: quic-go copied it into packets before Write returned, and
// a batch is finished only after its last send.
func (p *producer) release(b *pbatch) {
	if i := min(maxBufShift, bits.Len(uint(cap(b.buf)))-1); i >= minBufShift {
		buf := b.buf[:0]
		bufPools[i].Put(&buf)
	}
	b.buf = nil
}

// recsPool holds the record lists of finished batches (cleared).
var recsPool sync.Pool

// minPooledRecs is the shortest list worth pooling.
const minPooledRecs = 256

// newRecs returns an empty list for a batch's records; last is the length
// of the partition's last batch.
func newRecs(last int) []precord {
	if last >= minPooledRecs/2 {
		if rp, ok := recsPool.Get().(*[]precord); ok {
			return (*rp)[:0]
		}
	}
	return make([]precord, 0, max(last, 16))
}

// releaseRecs pools a list whose promises have all run; nothing else
// refers to it (complete takes ownership of the lists it is given).
func releaseRecs(recs []precord) {
	if cap(recs) >= minPooledRecs {
		clear(recs) // drop the records and promises for the GC
		recs = recs[:0]
		recsPool.Put(&recs)
	}
}

// complete hands finished records to the callback goroutine and frees
// their buffer space.
//
// Records whose promises are all quick (produceSync's) run here instead
// when no promise is queued or running: that saves ProduceSync a wake-up
// of the callback goroutine on its way back, and keeps promises in
// completion order and one at a time, because whoever runs them holds
// cbBusy and the callback goroutine waits for it.
func (p *producer) complete(recs []precord, err error) {
	p.cbMu.Lock()
	if p.cbDone {
		// Closed and the callback goroutine is gone or going: run them
		// here rather than lose them.
		p.cbMu.Unlock()
		p.runCallbacks([]completion{{recs: recs, err: err}})
		return
	}
	if !p.cbBusy && len(p.cbQueue) == 0 && allQuick(recs) {
		p.cbBusy = true
		p.cbMu.Unlock()
		p.runCallbacks([]completion{{recs: recs, err: err}})
		p.cbMu.Lock()
		p.cbBusy = false
		p.cbCond.Signal() // completions queued meanwhile wait for the goroutine
		p.cbMu.Unlock()
		return
	}
	p.cbQueue = append(p.cbQueue, completion{recs: recs, err: err})
	p.cbCond.Signal()
	p.cbMu.Unlock()
}

func allQuick(recs []precord) bool {
	for i := range recs {
		if !recs[i].quick {
			return false
		}
	}
	return len(recs) > 0
}

// callbacks runs promises in completion order, then frees buffer space.
func (p *producer) callbacks() {
	p.cbMu.Lock()
	defer p.cbMu.Unlock()
	for {
		for p.cbBusy || (len(p.cbQueue) == 0 && !p.cbDone) {
			p.cbCond.Wait()
		}
		if len(p.cbQueue) == 0 {
			return // done, and every promise has run
		}
		q := p.cbQueue
		p.cbQueue = nil
		p.cbBusy = true
		p.cbMu.Unlock()
		p.runCallbacks(q)
		p.cbMu.Lock()
		p.cbBusy = false
	}
}

func (p *producer) runCallbacks(q []completion) {
	var recs int
	var bytes int64
	for _, c := range q {
		for _, pr := range c.recs {
			if pr.promise != nil {
				pr.promise(pr.r, c.err)
			}
			recs++
			bytes += int64(pr.size)
		}
		releaseRecs(c.recs)
	}
	p.mu.Lock()
	p.bufRecs -= recs
	p.bufBytes -= bytes
	p.space.Broadcast()
	p.mu.Unlock()
}

// sender is the one goroutine that writes the produce stream.
func (p *producer) sender() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var wbuf []byte
	for {
		work := p.collect()
		if work.stop {
			return
		}
		for _, node := range work.open {
			p.c.goFunc(func() { p.openStream(node) })
		}
		for _, g := range work.giveUp {
			p.streamFailed(g.s, g.err)
		}
		if work.globalPID || len(work.pidParts) > 0 {
			p.initPIDs(work.globalPID, work.pidParts)
			continue
		}
		if len(work.expired) > 0 {
			for _, b := range work.expired {
				p.complete(b.recs, b.lastErr)
				p.release(b)
			}
		}
		if len(work.sends) > 0 {
			for _, ss := range work.sends {
				wbuf = p.write(ss.s, ss.batches, wbuf[:0])
			}
			if cap(wbuf) > 8<<20 {
				wbuf = nil
			}
			continue
		}
		if len(work.expired) > 0 || len(work.giveUp) > 0 {
			continue
		}
		wait := time.Hour
		if !work.next.IsZero() {
			wait = max(time.Until(work.next), 50*time.Microsecond)
		}
		timer.Reset(wait)
		select {
		case <-p.wake:
		case <-timer.C:
		case <-p.c.ctx.Done():
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

type senderWork struct {
	stop      bool
	open      []int32        // nodes to open a produce stream to
	giveUp    []streamGiveUp // streams to fail: unanswered too long
	globalPID bool
	pidParts  []*ppart
	sends     []streamSends
	expired   []*pbatch
	next      time.Time // earliest linger, backoff or request deadline
}

// streamGiveUp is a stream the sender fails, and why.
type streamGiveUp struct {
	s   *pstream
	err error
}

// streamSends are batches to write on one stream, in order.
type streamSends struct {
	s       *pstream
	batches []*pbatch
}

// produceDeadline is how long a produce request may go unanswered before
// its stream (and connection) is given up and its batches are retried:
// the server bounds its own wait by RequestTimeout, plus a margin for the
// answer to travel.
func (p *producer) produceDeadline() time.Duration {
	return p.cfg.requestTimeout + max(p.cfg.requestTimeout/4, time.Second)
}

// collect seals lingered batches and picks what the sender does next.
func (p *producer) collect() senderWork {
	p.mu.Lock()
	defer p.mu.Unlock()
	var w senderWork
	if p.c.ctx.Err() != nil {
		w.stop = true
		return w
	}
	now := time.Now()
	deadline := func(t time.Time) {
		if w.next.IsZero() || t.Before(w.next) {
			w.next = t
		}
	}
	idem := p.cfg.idempotent
	gen := p.c.meta.gen.Load()
	var reqDeadline time.Duration
	for _, pp := range p.parts {
		if len(pp.inflight) > 0 && p.cfg.acks != AcksNone && pp.stream != nil {
			// The oldest request of the partition is the first in flight.
			if reqDeadline == 0 {
				reqDeadline = p.produceDeadline()
			}
			sent := pp.inflight[0].sentAt
			due := sent.Add(reqDeadline)
			var why error
			if now.After(due) {
				why = fmt.Errorf("%w: no produce answer from node %d within %v", ErrConnection,
					pp.stream.node, reqDeadline)
			} else if now.Sub(sent) >= produceStall {
				// A slow answer may mean the leader is gone without
				// closing its connection (killed, cut off): look at the
				// metadata. When it names another leader, give the
				// stream up now rather than at the deadline; the batches
				// are resent there, with the same sequences.
				p.leaderLocked(pp, gen)
				if pp.leader >= 0 && pp.leader != pp.stream.node {
					why = fmt.Errorf("%w: no produce answer from node %d for %v, and node %d leads %s/%d now",
						ErrConnection, pp.stream.node, now.Sub(sent).Round(time.Millisecond), pp.leader,
						pp.topic, pp.partition)
				} else if now.After(pp.stallCheck) {
					pp.stallCheck = now.Add(produceStall)
					p.c.requestRefresh()
				}
			}
			if why != nil {
				if s := pp.stream; !s.dead && !slices.ContainsFunc(w.giveUp,
					func(g streamGiveUp) bool { return g.s == s }) {
					w.giveUp = append(w.giveUp, streamGiveUp{s: s, err: why})
				}
			} else {
				check := sent.Add(produceStall)
				if pp.stallCheck.After(check) {
					check = pp.stallCheck
				}
				if due.Before(check) {
					check = due
				}
				deadline(check)
			}
		}
		if b := pp.cur; b != nil {
			if p.flushing > 0 || now.Sub(b.created) >= p.cfg.linger {
				// Due, but while the partition's window is full a sealed
				// batch could only queue: keep it open so that it grows
				// until a slot frees (answer pokes the sender, which
				// seals and sends it in one pass). Sealed at once, every
				// wake-up of the sender while something flushes (Flush,
				// ProduceSync, a Produce blocked on a full buffer) would
				// queue another small batch, each paying a request, an
				// answer and a wake-up. Kept open at most until the
				// window's oldest batch is answered or given up
				// (produceDeadline), so delivery timeouts still hold.
				if pp.retrying || len(pp.inflight)+len(pp.ready) < p.cfg.maxInflight {
					p.sealLocked(pp)
				}
			} else {
				deadline(b.created.Add(p.cfg.linger))
			}
		}
		if len(pp.ready) == 0 || pp.retrying {
			continue
		}
		// Batches that waited past the delivery timeout fail. A batch
		// that was sent may have been written, so the sequence moves to
		// a new producer id either way.
		for len(pp.ready) > 0 && now.Sub(pp.ready[0].created) > p.cfg.deliveryTimout {
			b := pp.ready[0]
			pp.ready = pp.ready[1:]
			if b.lastErr == nil {
				b.lastErr = fmt.Errorf("%w: not delivered within %v", kerr.RequestTimedOut, p.cfg.deliveryTimout)
			}
			w.expired = append(w.expired, b)
			if idem && (b.encoded || len(pp.inflight) > 0) {
				p.resequenceLocked(pp)
			}
		}
		if len(pp.ready) == 0 {
			continue
		}
		if now.Before(pp.backoff) {
			deadline(pp.backoff)
			continue
		}
		if idem && !p.pidOK {
			w.globalPID = true
			continue
		}
		if idem && pp.needPID {
			if len(pp.inflight) == 0 {
				w.pidParts = append(w.pidParts, pp)
			}
			continue
		}
		p.leaderLocked(pp, gen)
		if pp.leader < 0 {
			// No leader known: ask for fresh metadata, try again later.
			p.c.requestRefresh()
			pp.backoff = now.Add(p.cfg.retryBackoff)
			deadline(pp.backoff)
			continue
		}
		s := p.streams[pp.leader]
		if s == nil {
			if !p.opening[pp.leader] {
				p.opening[pp.leader] = true
				w.open = append(w.open, pp.leader)
			}
			continue
		}
		if len(pp.inflight) > 0 && pp.stream != s {
			// The leader moved while batches are in flight to the old
			// one: wait for them to come back (answered or failed), so
			// that the partition's batches are never reordered.
			continue
		}
		var ss *streamSends
		for i := range w.sends {
			if w.sends[i].s == s {
				ss = &w.sends[i]
			}
		}
		if ss == nil && len(pp.ready) > 0 && len(pp.inflight) < p.cfg.maxInflight {
			w.sends = append(w.sends, streamSends{s: s})
			ss = &w.sends[len(w.sends)-1]
		}
		for len(pp.ready) > 0 && len(pp.inflight) < p.cfg.maxInflight {
			b := pp.ready[0]
			pp.ready = pp.ready[1:]
			if idem && !b.encoded {
				if !pp.hasPID {
					pp.pid, pp.epoch, pp.hasPID = p.pid, p.epoch, true
				}
				b.baseSeq = pp.nextSeq
				pp.nextSeq += int32(len(b.recs))
				if pp.nextSeq < 0 {
					pp.nextSeq &= math.MaxInt32 // wraps to 0, as Kafka's sequences do
				}
			}
			p.corr++
			b.corr = p.corr
			b.sentAt = now
			s.pending[b.corr] = b
			pp.stream = s
			pp.inflight = append(pp.inflight, b)
			ss.batches = append(ss.batches, b)
		}
	}
	return w
}

// produceStall is how long a produce answer may take before the producer
// checks whether the partition's leader moved.
const produceStall = time.Second

// leaderLocked updates pp.leader from the metadata cache when the cache
// changed (generation gen) since it was last read. p.mu is held.
func (p *producer) leaderLocked(pp *ppart, gen uint64) {
	if pp.metaGen == gen && pp.leader >= 0 {
		return
	}
	leader, _, ok := p.c.meta.leader(pp.topic, pp.partition)
	pp.metaGen = gen
	pp.leader = -1
	if ok {
		pp.leader = leader
	}
}

// resequenceLocked moves a partition to a new producer id: batches not yet
// answered are renumbered from 0 when next sent. p.mu is held.
func (p *producer) resequenceLocked(pp *ppart) {
	pp.needPID = true
	pp.hasPID = false
	pp.nextSeq = 0
	for _, b := range pp.ready {
		b.encoded = false
	}
}

// openStream opens the produce stream to a node, on its own goroutine so
// that a node that does not answer holds up no other node's partitions.
func (p *producer) openStream(node int32) {
	ctx, cancel := context.WithTimeout(p.c.ctx, p.cfg.requestTimeout)
	str, conn, _, err := p.c.openStreamTo(ctx, nodeRoute(node))
	cancel()
	if err != nil {
		p.mu.Lock()
		delete(p.opening, node)
		p.mu.Unlock()
		if p.c.ctx.Err() != nil {
			return
		}
		p.cfg.logger.Warn("produce stream: cannot connect; retrying", "node", node, "err", err)
		p.c.requestRefresh() // the node may be gone and its partitions led elsewhere
		p.backoffNode(node, err)
		return
	}
	s := &pstream{node: node, str: str, conn: conn, pending: map[uint32]*pbatch{}}
	p.mu.Lock()
	delete(p.opening, node)
	if p.closed {
		p.mu.Unlock()
		str.CancelRead(quic.StreamErrorCode(wire.StreamCodeCanceled))
		str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeCanceled))
		return
	}
	p.streams[node] = s
	p.mu.Unlock()
	p.poke()
	p.c.goFunc(func() { p.readAnswers(s) })
}

// backoffAll delays every partition with queued batches after a failure,
// recording err as their last error.
func (p *producer) backoffAll(err error) { p.backoffNode(-1, err) }

// backoffNode is backoffAll for the partitions led by node (every node when
// node < 0).
func (p *producer) backoffNode(node int32, err error) {
	p.mu.Lock()
	until := time.Now().Add(p.cfg.retryBackoff)
	for _, pp := range p.parts {
		if len(pp.ready) > 0 && (node < 0 || pp.leader == node) {
			pp.backoff = until
			for _, b := range pp.ready {
				b.lastErr = err
			}
		}
	}
	p.mu.Unlock()
	p.poke() // the sender sets its timer for the backoff
}

func (p *producer) initPIDs(global bool, parts []*ppart) {
	ctx, cancel := context.WithTimeout(p.c.ctx, p.cfg.requestTimeout)
	defer cancel()
	get := func() (int64, int16, error) {
		var resp wire.InitProducerIDResponse
		if err := p.c.roundTrip(ctx, &wire.InitProducerIDRequest{}, &resp); err != nil {
			return 0, 0, err
		}
		return resp.ProducerID, resp.Epoch, checkErr(resp.Err)
	}
	if global {
		id, epoch, err := get()
		if err != nil {
			p.cfg.logger.Warn("init producer id failed; retrying", "err", err)
			p.backoffAll(err)
			return
		}
		p.mu.Lock()
		p.pid, p.epoch, p.pidOK = id, epoch, true
		p.mu.Unlock()
	}
	for _, pp := range parts {
		id, epoch, err := get()
		if err != nil {
			p.backoffAll(err)
			return
		}
		p.mu.Lock()
		pp.pid, pp.epoch, pp.hasPID, pp.needPID, pp.nextSeq = id, epoch, true, false, 0
		p.mu.Unlock()
	}
}

// write writes batches as ProduceRequests: each frame's fields, then the
// batch bytes themselves (quic-go copies them into packets; no frame
// buffer copy). Small batches are gathered into one write.
func (p *producer) write(s *pstream, sends []*pbatch, wbuf []byte) []byte {
	timeout := int32(p.cfg.requestTimeout / time.Millisecond)
	_ = s.str.SetWriteDeadline(time.Now().Add(p.cfg.requestTimeout))
	var err error
	for _, b := range sends {
		p.prepare(b)
		req := wire.ProduceRequest{Corr: b.corr, Acks: int8(p.cfg.acks), TimeoutMs: timeout,
			Topic: b.part.topic, Partition: b.part.partition}
		if len(b.buf) < 64<<10 {
			req.Batches = b.buf
			wbuf = wire.AppendFrame(wbuf, &req)
			continue
		}
		wbuf = wire.AppendProduceHeader(wbuf, &req, len(b.buf))
		if _, err = s.str.Write(wbuf); err != nil {
			break
		}
		wbuf = wbuf[:0]
		if _, err = s.str.Write(b.buf); err != nil {
			break
		}
	}
	if err == nil && len(wbuf) > 0 {
		_, err = s.str.Write(wbuf)
	}
	if err != nil {
		p.streamFailed(s, fmt.Errorf("%w: %w", ErrConnection, err))
		return wbuf
	}
	if p.cfg.acks == AcksNone {
		p.mu.Lock()
		for _, b := range sends {
			delete(s.pending, b.corr)
			pp := b.part
			if i := slices.Index(pp.inflight, b); i >= 0 {
				pp.inflight = slices.Delete(pp.inflight, i, i+1)
			}
			for _, pr := range b.recs {
				pr.r.Offset = -1
			}
		}
		p.mu.Unlock()
		for _, b := range sends {
			p.complete(b.recs, nil)
			p.release(b)
		}
	}
	return wbuf
}

// prepare compresses a batch once and writes its header; called by the
// sender only, so b.buf needs no lock. The producer id and sequence were
// fixed by collect under the lock.
func (p *producer) prepare(b *pbatch) {
	if !b.prepared {
		b.prepared = true
		if p.cfg.codec != NoCompression {
			if z, err := batch.Compress(batch.Codec(p.cfg.codec), b.buf[batch.HeaderSize:]); err == nil {
				nb := make([]byte, batch.HeaderSize, batch.HeaderSize+len(z))
				b.buf = append(nb, z...)
			} else {
				p.cfg.logger.Warn("compression failed; sending uncompressed", "codec", p.cfg.codec, "err", err)
				p.cfg.codec = NoCompression
			}
		}
		h := b.buf
		binary.BigEndian.PutUint64(h[0:], 0)
		binary.BigEndian.PutUint32(h[8:], uint32(len(h)-12))
		binary.BigEndian.PutUint32(h[12:], 0xffffffff)
		h[16] = 2
		attrs := uint16(0)
		if len(h) > batch.HeaderSize && p.cfg.codec != NoCompression {
			attrs = uint16(p.cfg.codec) & 7
		}
		binary.BigEndian.PutUint16(h[21:], attrs)
		binary.BigEndian.PutUint32(h[23:], uint32(len(b.recs)-1))
		binary.BigEndian.PutUint64(h[27:], uint64(b.firstTS))
		binary.BigEndian.PutUint64(h[35:], uint64(b.maxTS))
		binary.BigEndian.PutUint32(h[57:], uint32(len(b.recs)))
	}
	h := b.buf
	pid, epoch, seq := int64(-1), int16(-1), int32(-1)
	if p.cfg.idempotent {
		pid, epoch, seq = b.part.pid, b.part.epoch, b.baseSeq
	}
	if !b.encoded || int64(binary.BigEndian.Uint64(h[43:])) != pid || int32(binary.BigEndian.Uint32(h[53:])) != seq {
		binary.BigEndian.PutUint64(h[43:], uint64(pid))
		binary.BigEndian.PutUint16(h[51:], uint16(epoch))
		binary.BigEndian.PutUint32(h[53:], uint32(seq))
		binary.BigEndian.PutUint32(h[17:], crc32.Checksum(h[21:], castagnoli))
		b.encoded = true
	}
}

// readAnswers reads ProduceResponses of one stream until it fails.
func (p *producer) readAnswers(s *pstream) {
	// Answers are small and come back to back: reading them through a
	// buffer takes one stream read for several instead of three each
	// (length, header, payload), and the payload buffer is reused (a
	// ProduceResponse keeps no reference to it).
	r := bufio.NewReaderSize(s.str, 4<<10)
	var buf []byte
	for {
		f, err := wire.ReadFrame(r, buf, p.cfg.maxFrameBytes)
		if err != nil {
			p.streamFailed(s, fmt.Errorf("%w: %w", ErrConnection, err))
			return
		}
		if cap(f.Payload) <= 4<<10 {
			buf = f.Payload[:0]
		}
		var resp wire.ProduceResponse
		if err := decodeAnswer(f, &resp); err != nil {
			p.streamFailed(s, err)
			return
		}
		p.answer(s, &resp)
	}
}

// answer applies one ProduceResponse.
func (p *producer) answer(s *pstream, resp *wire.ProduceResponse) {
	p.mu.Lock()
	if s.dead {
		p.mu.Unlock()
		return // its batches were requeued or failed already
	}
	b := s.pending[resp.Corr]
	if b == nil {
		p.mu.Unlock()
		p.cfg.logger.Warn("produce answer for an unknown request", "corr", resp.Corr)
		return
	}
	delete(s.pending, resp.Corr)
	pp := b.part
	if i := slices.Index(pp.inflight, b); i >= 0 {
		pp.inflight = slices.Delete(pp.inflight, i, i+1)
	}
	err := checkErr(resp.Err)
	var done []completion
	switch {
	case err == nil:
		for i := range b.recs {
			r := b.recs[i].r
			r.Offset = resp.BaseOffset + int64(i)
			if resp.LogAppendTime >= 0 {
				r.Timestamp = time.UnixMilli(resp.LogAppendTime)
			}
		}
		done = append(done, completion{recs: b.recs})
		p.release(b)
	case IsRetryable(err) || (pp.retrying && errors.Is(err, kerr.OutOfOrderSequenceNumber)):
		p.cfg.logger.Debug("produce failed; retrying", "topic", pp.topic, "partition", pp.partition,
			"err", err)
		if leaderMoved(err) {
			// Resent after the backoff to the leader a fresh metadata
			// names; the same bytes (producer id, epoch, sequence), so a
			// batch the new leader already has is answered Duplicate.
			p.c.requestRefresh()
		}
		b.attempts++
		b.lastErr = err
		pp.retrying = true
		pp.requeue = append(pp.requeue, b)
	default:
		done = append(done, completion{recs: b.recs, err: err})
		p.release(b)
		if p.cfg.idempotent {
			// A gap in the sequence: later batches in flight come back
			// out of order; they are renumbered under a new producer id.
			pp.retrying = true
			p.resequenceLocked(pp)
		}
	}
	if pp.retrying && len(pp.inflight) == 0 {
		p.endRetryLocked(pp)
	}
	if len(pp.ready) > 0 || pp.cur != nil {
		p.poke() // an in-flight slot is free
	}
	p.mu.Unlock()
	for _, c := range done {
		p.complete(c.recs, c.err)
	}
}

// endRetryLocked puts the batches that came back in front of the queue, in
// order, once none of the partition's is in flight. p.mu is held.
func (p *producer) endRetryLocked(pp *ppart) {
	pp.ready = append(pp.requeue, pp.ready...)
	pp.requeue = nil
	pp.retrying = false
	pp.backoff = time.Now().Add(p.cfg.retryBackoff)
	if pp.needPID {
		for _, b := range pp.ready {
			b.encoded = false
		}
	}
	p.poke()
}

// streamFailed puts every batch in flight on s back in front of its
// partition's queue and drops the stream; the sender opens a new one (to
// the partition's leader as the metadata then says).
func (p *producer) streamFailed(s *pstream, err error) {
	p.mu.Lock()
	if s.dead {
		p.mu.Unlock()
		return
	}
	s.dead = true
	if p.streams[s.node] == s {
		delete(p.streams, s.node)
	}
	closing := p.closed
	if !closing {
		p.cfg.logger.Warn("produce stream failed; resending in-flight batches", "node", s.node,
			"batches", len(s.pending), "err", err)
	}
	for _, pp := range p.parts {
		if pp.stream != s || (len(pp.inflight) == 0 && len(pp.requeue) == 0) {
			continue
		}
		for _, b := range pp.inflight {
			b.attempts++
			b.lastErr = err
		}
		p.resent.Add(int64(len(pp.inflight)))
		pp.requeue = append(pp.requeue, pp.inflight...)
		pp.inflight = nil
		pp.stream = nil
		pp.retrying = true
		p.endRetryLocked(pp)
	}
	s.pending = map[uint32]*pbatch{}
	p.mu.Unlock()
	s.str.CancelRead(quic.StreamErrorCode(wire.StreamCodeCanceled))
	s.str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeCanceled))
	if !closing {
		p.c.requestRefresh() // the node may be gone and its partitions led elsewhere
		if s.conn.Context().Err() == nil {
			// The stream broke but the connection looks alive: it may be
			// half-dead; start afresh.
			p.c.dropConn(s.conn, "produce stream failed")
		}
	}
}

func (c *Client) produceSync(ctx context.Context, recs ...*Record) error {
	if len(recs) == 0 {
		return nil
	}
	var mu sync.Mutex
	var errs []error
	left := atomic.Int64{}
	left.Store(int64(len(recs)))
	done := make(chan struct{})
	promise := func(r *Record, err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("%s/%d: %w", r.Topic, r.Partition, err))
			mu.Unlock()
		}
		if left.Add(-1) == 0 {
			close(done)
		}
	}
	p := c.prod
	for i, r := range recs {
		if p == nil {
			promise(r, ErrClosed)
			continue
		}
		if i == len(recs)-1 {
			// The caller waits for these records: they need not
			// linger. Set before the last one is added, so that the
			// sender seals its batch on the poke adding it makes
			// (addLocked); set after, the sender could look at the
			// batch in between, see it lingering and sleep until a
			// second poke. The earlier records share the batch.
			p.mu.Lock()
			p.flushing++
			p.mu.Unlock()
		}
		p.produce(ctx, r, promise, true)
	}
	if p != nil {
		defer func() {
			p.mu.Lock()
			p.flushing--
			p.mu.Unlock()
		}()
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err() // the records stay buffered and may still be written
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

func (c *Client) flush(ctx context.Context) error {
	if c.prod == nil {
		return ErrClosed
	}
	return c.prod.flush(ctx)
}

func (p *producer) flush(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flushing++
	defer func() { p.flushing-- }()
	p.poke()
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.space.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	for p.bufRecs > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.space.Wait()
	}
	return nil
}

func (c *Client) bufferedRecords() int {
	if c.prod == nil {
		return 0
	}
	c.prod.mu.Lock()
	defer c.prod.mu.Unlock()
	return c.prod.bufRecs
}

// shutdown fails everything still buffered with ErrClosed and stops the
// callback goroutine once it has run every callback. The client's context
// is already cancelled, which stops the sender.
func (p *producer) shutdown() {
	p.mu.Lock()
	p.closed = true
	var left []precord
	for _, t := range p.topics {
		left = append(left, t.pending...)
		t.pending = nil
	}
	for _, pp := range p.parts {
		for _, bs := range [][]*pbatch{pp.requeue, pp.inflight, pp.ready} {
			for _, b := range bs {
				left = append(left, b.recs...)
			}
		}
		if pp.cur != nil {
			left = append(left, pp.cur.recs...)
		}
		pp.requeue, pp.inflight, pp.ready, pp.cur = nil, nil, nil, nil
	}
	streams := p.streams
	p.streams = map[int32]*pstream{}
	for _, s := range streams {
		s.dead = true
		s.pending = map[uint32]*pbatch{}
	}
	p.space.Broadcast()
	p.mu.Unlock()
	for _, s := range streams {
		s.str.CancelRead(quic.StreamErrorCode(wire.StreamCodeCanceled))
		s.str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeCanceled))
	}
	if len(left) > 0 {
		p.complete(left, ErrClosed)
	}
	p.cbMu.Lock()
	p.cbDone = true
	p.cbCond.Broadcast()
	p.cbMu.Unlock()
}
