package transport

import (
	"context"
	"io"
	"reflect"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/internal/batch"
	"github.com/wispbus/wisp/internal/metrics"
	"github.com/wispbus/wisp/transport/wire"
)

// idleRecheck is how often a waiting fetch looks again even without a
// wake-up, so that a partition deleted or truncated under it is noticed.
const idleRecheck = 5 * time.Second

// defaultFetchBytes is the per-partition size of a push or fetch when the
// request gives none.
const defaultFetchBytes = 1 << 20

type sessionPart struct {
	topic     string
	partition int32
	offset    int64
	maxBytes  int32
}

// fetchSession serves a fetch session: it pushes each partition's batches
// past its position as soon as they are below the high watermark,
// round-robin over the partitions, and waits on bus.Broker.Watch when
// every partition is caught up. QUIC flow control is the backpressure: a
// client that stops reading blocks the push, not the server.
func (cs *connState) fetchSession(str *quic.Stream, first wire.Frame) {
	req, err := decodeRequest(first)
	if err != nil {
		cs.failRead(str, err)
		return
	}
	r := req.(*wire.FetchSessionRequest)
	ctx, cancel := context.WithCancel(cs.ctx)
	defer cancel()
	// The client sends nothing after the first frame; its closing (FIN or
	// reset) ends the session. The watcher is owned by this function.
	watcherDone := make(chan struct{})
	var protoFail error
	go func() {
		defer close(watcherDone)
		defer cancel()
		f, err := wire.ReadFrame(str, nil, cs.s.cfg.MaxFrameBytes)
		if err == nil {
			protoFail = protoErr(wire.StreamCodeUnsupported, kerr.InvalidRequest,
				f.API.String()+" frame inside a fetch session")
		} else if err != io.EOF {
			protoFail = err
		}
	}()
	parts := make([]sessionPart, 0, len(r.Partitions))
	for _, p := range r.Partitions {
		mb := p.MaxBytes
		if mb <= 0 {
			mb = r.MaxBytes
		}
		if mb <= 0 {
			mb = defaultFetchBytes
		}
		// A push never exceeds the frame limit, as fetchOnce's answer
		// does not: the client could not read a larger one, and each
		// stuck session (one whose client stopped reading) holds its
		// last push in memory: asking for 1 GiB per push must not make
		// the server read 1 GiB of log per session.
		mb = min(mb, int32(cs.s.cfg.MaxFrameBytes-1024))
		parts = append(parts, sessionPart{topic: p.Topic, partition: p.Partition, offset: p.Offset, maxBytes: mb})
	}
	werr := cs.pushLoop(ctx, str, parts)
	cancel()
	if werr != nil || ctx.Err() != nil {
		str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeCanceled))
	}
	str.CancelRead(quic.StreamErrorCode(wire.StreamCodeOK))
	<-watcherDone
	if protoFail != nil && cs.ctx.Err() == nil {
		cs.failRead(str, protoFail)
		return
	}
	_ = str.Close()
}

// pushLoop runs until ctx ends, the stream fails or no partition is left.
func (cs *connState) pushLoop(ctx context.Context, str *quic.Stream, parts []sessionPart) error {
	b := cs.s.b
	buf := make([]byte, 0, 64<<10)
	watches := make([]<-chan struct{}, 0, len(parts))
	for len(parts) > 0 {
		if ctx.Err() != nil {
			return nil
		}
		sent := false
		watches = watches[:0]
		for i := 0; i < len(parts); i++ {
			p := &parts[i]
			// Watch before Fetch: an append between the two closes the
			// channel we already hold, so no wake-up is lost.
			w, werr := b.Watch(p.topic, p.partition)
			start := time.Now()
			res, err := b.Fetch(ctx, p.topic, p.partition, p.offset, p.maxBytes)
			if werr != nil && err == nil {
				err = werr
			}
			if err != nil || len(res.Batches) > 0 {
				metrics.ObserveRequest("quic", "FetchPush", start, err)
				push := wire.FetchPush{FetchedPartition: wire.FetchedPartition{Topic: p.topic, Partition: p.partition,
					Err: errCode(err), HighWatermark: res.HighWatermark, LogStartOffset: res.LogStartOffset,
					Batches: res.Batches}}
				buf = wire.AppendFrame(buf[:0], &push)
				// No write deadline: a client that stops reading (its
				// application is busy) blocks this push through flow
				// control for as long as it likes; closing or resetting
				// the stream, or the connection, ends the write.
				if _, werr := str.Write(buf); werr != nil {
					return werr
				}
				if cap(buf) > 4<<20 {
					buf = make([]byte, 0, 64<<10)
				}
				if err != nil {
					// The client resumes the partition in a new session.
					parts = append(parts[:i], parts[i+1:]...)
					i--
					continue
				}
				p.offset = nextOffset(res.Batches, p.offset)
				sent = true
				continue
			}
			watches = append(watches, w)
		}
		if !sent && len(parts) > 0 {
			waitAny(ctx, watches, idleRecheck)
		}
	}
	<-ctx.Done()
	return nil
}

// nextOffset is the offset after the last whole batch of data.
func nextOffset(data []byte, cur int64) int64 {
	for len(data) >= batch.HeaderSize {
		h, err := batch.ParseHeader(data)
		if err != nil || h.Size() > len(data) {
			break
		}
		if n := h.NextOffset(); n > cur {
			cur = n
		}
		data = data[h.Size():]
	}
	return cur
}

// waitAny blocks until one of chans is closed, ctx ends or d passes.
func waitAny(ctx context.Context, chans []<-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	switch len(chans) {
	case 0:
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		return
	case 1:
		select {
		case <-chans[0]:
		case <-ctx.Done():
		case <-t.C:
		}
		return
	}
	cases := make([]reflect.SelectCase, 0, len(chans)+2)
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(t.C)})
	for _, c := range chans {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)})
	}
	reflect.Select(cases)
}

// fetchOnce serves a one-shot Fetch: it waits up to MaxWaitMs until the
// partitions together have MinBytes (at least one byte when MinBytes <= 0
// and MaxWaitMs > 0).
func (cs *connState) fetchOnce(r *wire.FetchRequest) (wire.Message, error) {
	b := cs.s.b
	deadline := time.Now().Add(time.Duration(max(r.MaxWaitMs, 0)) * time.Millisecond)
	minBytes := max(int(r.MinBytes), 1)
	total := int(r.MaxBytes)
	if total <= 0 {
		total = 50 << 20
	}
	total = min(total, cs.s.cfg.MaxFrameBytes-1024)
	for {
		resp := &wire.FetchResponse{}
		got, left := 0, total
		watches := make([]<-chan struct{}, 0, len(r.Partitions))
		var first error
		for _, p := range r.Partitions {
			w, _ := b.Watch(p.Topic, p.Partition)
			if w != nil {
				watches = append(watches, w)
			}
			mb := int(p.MaxBytes)
			if mb <= 0 {
				mb = defaultFetchBytes
			}
			mb = min(mb, left)
			fp := wire.FetchedPartition{Topic: p.Topic, Partition: p.Partition}
			if mb > 0 {
				res, err := b.Fetch(cs.ctx, p.Topic, p.Partition, p.Offset, int32(mb))
				if len(res.Batches) > mb && got > 0 {
					res.Batches = nil // at least one batch overall, never past the frame limit
				}
				fp.Err, fp.HighWatermark, fp.LogStartOffset, fp.Batches = errCode(err), res.HighWatermark, res.LogStartOffset, res.Batches
				if err != nil && first == nil {
					first = err
				}
			}
			got += len(fp.Batches)
			left -= len(fp.Batches)
			resp.Partitions = append(resp.Partitions, fp)
		}
		wait := time.Until(deadline)
		if got >= minBytes || first != nil || wait <= 0 || cs.ctx.Err() != nil {
			return resp, first
		}
		waitAny(cs.ctx, watches, wait)
	}
}
