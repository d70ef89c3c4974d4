package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
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
// called (on the caller's goroutine). A batch is sealed when full, when it
// has lingered, or on Flush; one sender goroutine sends sealed batches on
// the one produce stream, at most MaxInflight per partition, and one
// reader goroutine per stream matches answers to batches. Callbacks run on
// a callback goroutine, in completion order, which is partition order.
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
// Lock order: producer.mu, then clientState.mu. No lock is held while a
// stream is written or read.

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
	parts    []*ppart
	flushing int
	closed   bool
	stream   *pstream
	corr     uint32
	pid      int64
	epoch    int16
	pidOK    bool

	wake chan struct{} // cap 1: something for the sender to look at

	resent atomic.Int64 // batches put back for resending (tests watch it)

	cbMu    sync.Mutex
	cbCond  *sync.Cond
	cbQueue []completion
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
	topic     string
	partition int32
	cur       *pbatch
	ready     []*pbatch // sealed, in send order
	inflight  []*pbatch // sent on the current stream, in order
	requeue   []*pbatch // came back failed while retrying, in order
	retrying  bool
	backoff   time.Time
	pid       int64
	epoch     int16
	hasPID    bool
	lastSize  int // bytes and records of the last sealed batch, to size the next
	lastCount int
	nextSeq   int32
	needPID   bool
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
}

type precord struct {
	r       *Record
	promise func(*Record, error)
	size    int64
}

type completion struct {
	recs []precord
	err  error
}

type pstream struct {
	str     *quic.Stream
	conn    *quic.Conn
	pending map[uint32]*pbatch
	dead    bool
}

func newProducer(c *Client) *producer {
	p := &producer{c: c, cfg: &c.cfg, topics: map[string]*ptopic{}, wake: make(chan struct{}, 1)}
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
	c.prod.produce(ctx, rec, promise)
}

func (p *producer) produce(ctx context.Context, rec *Record, promise func(*Record, error)) {
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
	pr := precord{r: rec, promise: promise, size: size}
	t := p.topics[rec.Topic]
	if t == nil {
		t = &ptopic{name: rec.Topic}
		p.topics[rec.Topic] = t
	}
	if t.parts == nil {
		t.pending = append(t.pending, pr)
		p.loadLocked(t)
		p.mu.Unlock()
		return
	}
	if time.Since(t.loadedAt) > metadataMaxAge {
		p.loadLocked(t) // refresh in the background: partitions may have been added
	}
	err := p.addLocked(t, pr)
	p.mu.Unlock()
	if err != nil {
		p.complete([]precord{pr}, err)
	}
}

// metadataMaxAge is how old a topic's partition count may get before a
// produce refreshes it (in the background).
const metadataMaxAge = time.Minute

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

// addLocked partitions a record and encodes it into its partition's open
// batch. p.mu is held.
func (p *producer) addLocked(t *ptopic, pr precord) error {
	n := int32(len(t.parts))
	part := p.cfg.partitioner.Partition(pr.r, n)
	if part < 0 || part >= n {
		return fmt.Errorf("%w: partition %d of %s (%d partitions)", kerr.UnknownTopicOrPartition, part, t.name, n)
	}
	pp := t.parts[part]
	pr.r.Partition = part
	if pr.r.Timestamp.IsZero() {
		pr.r.Timestamp = time.Now()
	}
	ts := pr.r.Timestamp.UnixMilli()
	b := pp.cur
	if b != nil && len(b.buf)+int(pr.size)+16 > p.cfg.batchMaxBytes {
		p.sealLocked(pp)
		b = nil
	}
	if b == nil {
		b = &pbatch{part: pp, created: time.Now(), firstTS: ts, maxTS: ts,
			buf: p.newBuf(pp.lastSize), recs: make([]precord, 0, max(pp.lastCount, 16))}
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
		}
		p.mu.Unlock()
		if len(pending) > 0 {
			p.complete(pending, err)
		}
		return
	}
	t.loadedAt = time.Now()
	for i := int32(len(t.parts)); i < n; i++ {
		pp := &ppart{topic: t.name, partition: i}
		t.parts = append(t.parts, pp)
		p.parts = append(p.parts, pp)
	}
	pending := t.pending
	t.pending = nil
	var failed []precord
	var ferr error
	for _, pr := range pending {
		if err := p.addLocked(t, pr); err != nil {
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
	var resp wire.MetadataResponse
	if err := c.roundTrip(ctx, &wire.MetadataRequest{Topics: []string{topic}, AutoCreate: true}, &resp); err != nil {
		return 0, err
	}
	if err := checkErr(resp.Err); err != nil {
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

// bufPool holds batch buffers of full size (cap BatchMaxBytes): a
// partition whose batches fill up reuses them instead of growing a new
// one every time.
var bufPool sync.Pool

// newBuf returns a buffer for a batch, with room for the header; sized
// after the partition's last batch.
func (p *producer) newBuf(last int) []byte {
	if last >= p.cfg.batchMaxBytes/2 {
		if bp, ok := bufPool.Get().(*[]byte); ok && cap(*bp) == p.cfg.batchMaxBytes {
			return (*bp)[:batch.HeaderSize]
		}
		return make([]byte, batch.HeaderSize, p.cfg.batchMaxBytes)
	}
	return make([]byte, batch.HeaderSize, min(p.cfg.batchMaxBytes, max(16<<10, last+last/4)))
}

// release returns a finished batch's buffer to the pool. The sender is
// done with it: quic-go copied it into packets before Write returned, and
// a batch is finished only after its last send.
func (p *producer) release(b *pbatch) {
	if cap(b.buf) == p.cfg.batchMaxBytes {
		buf := b.buf[:0]
		bufPool.Put(&buf)
	}
	b.buf = nil
}

// complete hands finished records to the callback goroutine and frees
// their buffer space.
func (p *producer) complete(recs []precord, err error) {
	p.cbMu.Lock()
	if p.cbDone {
		// Closed and the callback goroutine is gone or going: run them
		// here rather than lose them.
		p.cbMu.Unlock()
		p.runCallbacks([]completion{{recs: recs, err: err}})
		return
	}
	p.cbQueue = append(p.cbQueue, completion{recs: recs, err: err})
	p.cbCond.Signal()
	p.cbMu.Unlock()
}

// callbacks runs promises in completion order, then frees buffer space.
func (p *producer) callbacks() {
	for {
		p.cbMu.Lock()
		for len(p.cbQueue) == 0 && !p.cbDone {
			p.cbCond.Wait()
		}
		if len(p.cbQueue) == 0 && p.cbDone {
			p.cbMu.Unlock()
			return
		}
		q := p.cbQueue
		p.cbQueue = nil
		p.cbMu.Unlock()
		p.runCallbacks(q)
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
			bytes += pr.size
		}
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
		if work.openStream {
			p.openStream()
			continue
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
			wbuf = p.write(work.stream, work.sends, wbuf[:0])
			if cap(wbuf) > 8<<20 {
				wbuf = nil
			}
			continue
		}
		if len(work.expired) > 0 {
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
	stop       bool
	openStream bool
	globalPID  bool
	pidParts   []*ppart
	stream     *pstream
	sends      []*pbatch
	expired    []*pbatch
	next       time.Time // earliest linger or backoff deadline
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
	for _, pp := range p.parts {
		if b := pp.cur; b != nil {
			if p.flushing > 0 || now.Sub(b.created) >= p.cfg.linger {
				p.sealLocked(pp)
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
		if p.stream == nil {
			w.openStream = true
			continue
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
			p.stream.pending[b.corr] = b
			pp.inflight = append(pp.inflight, b)
			w.sends = append(w.sends, b)
		}
	}
	if len(w.sends) > 0 {
		w.stream = p.stream
	}
	return w
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

func (p *producer) openStream() {
	ctx, cancel := context.WithTimeout(p.c.ctx, p.cfg.requestTimeout)
	str, conn, err := p.c.openStream(ctx)
	cancel()
	if err != nil {
		p.cfg.logger.Warn("produce stream: cannot connect; retrying", "err", err)
		p.backoffAll(err)
		return
	}
	s := &pstream{str: str, conn: conn, pending: map[uint32]*pbatch{}}
	p.mu.Lock()
	p.stream = s
	p.mu.Unlock()
	p.c.goFunc(func() { p.readAnswers(s) })
}

// backoffAll delays every partition with queued batches after a failure
// to connect, recording err as their last error.
func (p *producer) backoffAll(err error) {
	p.mu.Lock()
	until := time.Now().Add(p.cfg.retryBackoff)
	for _, pp := range p.parts {
		if len(pp.ready) > 0 {
			pp.backoff = until
			for _, b := range pp.ready {
				b.lastErr = err
			}
		}
	}
	p.mu.Unlock()
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
	for {
		f, err := wire.ReadFrame(s.str, nil, p.cfg.maxFrameBytes)
		if err != nil {
			p.streamFailed(s, fmt.Errorf("%w: %w", ErrConnection, err))
			return
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
// partition's queue and drops the stream; the sender opens a new one.
func (p *producer) streamFailed(s *pstream, err error) {
	p.mu.Lock()
	if s.dead {
		p.mu.Unlock()
		return
	}
	s.dead = true
	if p.stream == s {
		p.stream = nil
	}
	closing := p.closed
	if !closing {
		p.cfg.logger.Warn("produce stream failed; resending in-flight batches", "batches", len(s.pending), "err", err)
	}
	for _, pp := range p.parts {
		if len(pp.inflight) == 0 && len(pp.requeue) == 0 {
			continue
		}
		for _, b := range pp.inflight {
			b.attempts++
			b.lastErr = err
		}
		p.resent.Add(int64(len(pp.inflight)))
		pp.requeue = append(pp.requeue, pp.inflight...)
		pp.inflight = nil
		pp.retrying = true
		p.endRetryLocked(pp)
	}
	s.pending = map[uint32]*pbatch{}
	p.mu.Unlock()
	s.str.CancelRead(quic.StreamErrorCode(wire.StreamCodeCanceled))
	s.str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeCanceled))
	if !closing && s.conn.Context().Err() == nil {
		// The stream broke but the connection looks alive: it may be
		// half-dead; start afresh.
		p.c.dropConn(s.conn, "produce stream failed")
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
	for _, r := range recs {
		c.produce(ctx, r, func(r *Record, err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s/%d: %w", r.Topic, r.Partition, err))
				mu.Unlock()
			}
			if left.Add(-1) == 0 {
				close(done)
			}
		})
	}
	// Records produced, waiting for them need not linger.
	if c.prod != nil {
		c.prod.mu.Lock()
		c.prod.flushing++
		c.prod.poke()
		c.prod.mu.Unlock()
		defer func() {
			c.prod.mu.Lock()
			c.prod.flushing--
			c.prod.mu.Unlock()
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
	s := p.stream
	p.stream = nil
	if s != nil {
		s.dead = true
		s.pending = map[uint32]*pbatch{}
	}
	p.space.Broadcast()
	p.mu.Unlock()
	if s != nil {
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
