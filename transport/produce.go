package transport

import (
	"context"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/metrics"
	"github.com/wispbus/wisp/transport/wire"
)

// A produce stream carries ProduceRequests back to back. Requests for one
// partition are appended in the order they arrived, each after the previous
// one finished (so an idempotent producer's sequences arrive in order), by
// one goroutine per partition with queued requests; different partitions
// proceed in parallel and their answers interleave on the stream, told
// apart by Corr.
//
// Memory: the reader stops reading (and QUIC flow control stops the
// client) once queued requests hold produceQueueBytes, so a fast client
// cannot make the server buffer without bound.

// produceQueueBytes bounds the request bytes queued on one produce stream.
func (s *Server) produceQueueBytes() int64 { return int64(4 * s.cfg.MaxFrameBytes) }

type produceStream struct {
	cs  *connState
	str *quic.Stream
	ctx context.Context

	wmu sync.Mutex // serialises writes of answers

	budget *byteBudget

	mu    sync.Mutex // guards parts
	parts map[partKey]*partQueue
	wg    sync.WaitGroup // partition goroutines
}

type partKey struct {
	topic     string
	partition int32
}

type queued struct {
	req  *wire.ProduceRequest
	size int64
	buf  []byte // the frame buffer req aliases, back to framePool after
}

// framePool recycles produce frame buffers: bus.Broker.Produce does not
// keep the batches it is given, so once a request is answered its buffer
// can take the next frame.
var framePool sync.Pool

// frameBufSize fits a default-sized client batch (1 MiB) with its frame.
const frameBufSize = 1<<20 + 4<<10

func getFrameBuf() []byte {
	if bp, ok := framePool.Get().(*[]byte); ok {
		return *bp
	}
	return make([]byte, 0, frameBufSize)
}

func putFrameBuf(b []byte) {
	if cap(b) >= 64<<10 && cap(b) <= 32<<20 {
		b = b[:0]
		framePool.Put(&b)
	}
}

type partQueue struct {
	items   []queued // guarded by produceStream.mu
	running bool     // a goroutine is draining items; guarded by produceStream.mu
}

func (cs *connState) produceStream(str *quic.Stream, first wire.Frame) {
	ctx, cancel := context.WithCancel(cs.ctx)
	defer cancel()
	ps := &produceStream{cs: cs, str: str, ctx: ctx, parts: map[partKey]*partQueue{},
		budget: newByteBudget(cs.s.produceQueueBytes())}
	f := first
	var err error
	for {
		req, derr := decodeRequest(f)
		if derr != nil {
			err = derr
			break
		}
		pr, ok := req.(*wire.ProduceRequest)
		if !ok {
			err = protoErr(wire.StreamCodeUnsupported, kerr.InvalidRequest, f.API.String()+" on a produce stream")
			break
		}
		size := int64(len(f.Payload))
		if !ps.budget.acquire(ctx, size) {
			break
		}
		ps.enqueue(queued{pr, size, f.Payload})
		if f, err = wire.ReadFrame(str, getFrameBuf(), cs.s.cfg.MaxFrameBytes); err != nil {
			break
		}
	}
	// Answer everything already queued before the stream ends, so a client
	// that half-closed after its last request gets every answer.
	ps.wg.Wait()
	ps.wmu.Lock()
	defer ps.wmu.Unlock()
	if err != nil {
		cs.failRead(str, err)
	} else {
		_ = str.Close()
	}
}

func (ps *produceStream) enqueue(it queued) {
	k := partKey{it.req.Topic, it.req.Partition}
	ps.mu.Lock()
	q := ps.parts[k]
	if q == nil {
		q = &partQueue{}
		ps.parts[k] = q
	}
	q.items = append(q.items, it)
	if !q.running {
		q.running = true
		ps.wg.Add(1)
		go ps.drain(q)
	}
	ps.mu.Unlock()
}

// drain appends a partition's queued requests in order and exits when the
// queue is empty; enqueue starts it again.
func (ps *produceStream) drain(q *partQueue) {
	defer ps.wg.Done()
	for {
		ps.mu.Lock()
		if len(q.items) == 0 {
			q.running = false
			q.items = nil
			ps.mu.Unlock()
			return
		}
		it := q.items[0]
		q.items[0] = queued{}
		q.items = q.items[1:]
		ps.mu.Unlock()
		ps.produce(it.req)
		putFrameBuf(it.buf)
		ps.budget.release(it.size)
	}
}

func (ps *produceStream) produce(r *wire.ProduceRequest) {
	start := time.Now()
	resp := &wire.ProduceResponse{Corr: r.Corr}
	var err error
	acks := bus.Acks(r.Acks)
	switch acks {
	case bus.AcksNone, bus.AcksLeader, bus.AcksAll:
		ctx := ps.ctx
		if r.TimeoutMs > 0 {
			rc := newReqCtx(ctx, time.Duration(r.TimeoutMs)*time.Millisecond)
			defer rc.release()
			ctx = rc
		}
		var res bus.ProduceResult
		res, err = ps.cs.s.b.Produce(ctx, r.Topic, r.Partition, r.Batches, acks)
		resp.BaseOffset, resp.LastOffset = res.BaseOffset, res.LastOffset
		resp.LogAppendTime, resp.LogStartOffset, resp.Duplicate = res.LogAppendTime, res.LogStartOffset, res.Duplicate
	default:
		err = kerr.InvalidRequiredAcks
	}
	resp.Err = errCode(err)
	metrics.ObserveRequest("quic", "Produce", start, err)
	if acks == bus.AcksNone {
		if err != nil {
			ps.cs.s.log.Debug("acks=0 produce failed", "topic", r.Topic, "partition", r.Partition, "err", err)
		}
		return
	}
	frame := wire.AppendFrame(make([]byte, 0, 64+len(resp.Message)), resp)
	ps.wmu.Lock()
	werr := writeFrame(ps.str, frame)
	ps.wmu.Unlock()
	if werr != nil {
		// The client is gone or stopped reading: stop the reader too.
		ps.str.CancelRead(quic.StreamErrorCode(wire.StreamCodeCanceled))
	}
}

// byteBudget is a counting semaphore of bytes.
type byteBudget struct {
	mu    sync.Mutex
	cond  *sync.Cond
	left  int64
	limit int64
}

func newByteBudget(n int64) *byteBudget {
	b := &byteBudget{left: n, limit: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire takes n bytes (a request larger than the whole budget waits
// until nothing else is held), or returns false once ctx ends.
func (b *byteBudget) acquire(ctx context.Context, n int64) bool {
	n = min(n, b.limit)
	// Fast path: while the budget has room (always, for a client waiting
	// for each answer), take it without registering with ctx, which
	// costs a registration and its removal in ctx's parent.
	b.mu.Lock()
	if b.left >= n {
		b.left -= n
		b.mu.Unlock()
		return true
	}
	b.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.left < n {
		if ctx.Err() != nil {
			return false
		}
		b.cond.Wait()
	}
	b.left -= n
	return true
}

func (b *byteBudget) release(n int64) {
	n = min(n, b.limit)
	b.mu.Lock()
	b.left += n
	b.cond.Broadcast()
	b.mu.Unlock()
}
