package client

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/internal/batch"
	"github.com/wispbus/wisp/transport/wire"
)

// The consumer.
//
// A fetch goroutine runs rounds: each round keeps one fetch session open
// per leader node for the assigned partitions that node leads, starting
// each at its delivered position; the sessions decode the pushed batches
// into records and queue them as chunks (one partition each) on a bounded
// channel: when the application falls behind the channel fills, the
// sessions stop reading and QUIC flow control stops the servers. A round
// ends, and the next starts from the delivered positions, when the
// assignment or a position changes (seek, reset), when a session fails
// (NOT_LEADER, a node gone), or when the metadata names a new leader for
// one of the partitions; a consumer without a group also adds partitions
// that appear in its topics.
//
// The application's goroutine (Poll, Records) takes chunks, drops records
// below a partition's delivered position (a restarted session may send a
// few again) and advances it. processed trails delivered: it is what the
// application has finished with, and what auto-commit and revocation
// commit, so an offset the application has not received is never committed.
//
// With a group, a group goroutine joins, syncs, heartbeats and
// auto-commits. Assignment is eager: at a rebalance it asks the
// application's goroutine to revoke everything (at its next Poll or
// record; after half a session timeout it revokes itself), which commits
// what was processed, then joins again.
//
// Lock order: Consumer.mu, then producer/client locks; Consumer.mu is never
// held across a request.

// Consumer reads records from partitions, alone or as a member of a
// consumer group. Create one with Client.NewConsumer. Poll and Records are
// for one goroutine; the other methods are safe for concurrent use.
type Consumer struct {
	c      *Client
	cfg    consumerCfg
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	chunks  chan chunk    // from the fetch goroutine
	notify  chan struct{} // cap 1: wake the application's goroutine
	restart chan struct{} // cap 1: the fetch goroutine must reopen its session

	revoking atomic.Bool // a revocation is pending: the app's goroutine stops yielding

	// held is the rest of a chunk the application stopped iterating in
	// the middle of; only the application's goroutine touches it.
	held chunk

	mu           sync.Mutex
	parts        map[topicPart]*cpart
	roundCancel  context.CancelFunc // ends the fetch round in progress
	revokeReq    chan struct{}
	assignedNote map[string][]int32
	errs         []error
	memberID     string
	generation   int32 // of the assignment in force; -1 between generations
	lastGen      int32 // of lastAssigned, sent in the member metadata
	lastAssigned map[string][]int32
	topicCounts  map[string]int32 // partition counts of the subscription at the last join
	closed       bool
}

// cpart is an assigned partition's positions. delivered >= received >=
// processed: delivered is where the fetch session resumes (records up to it
// were taken off the channel), received follows the records actually handed
// to the application, processed the ones it finished with.
type cpart struct {
	tp        topicPart
	delivered int64        // next offset to take from the session; guarded by Consumer.mu
	committed int64        // last offset committed by this consumer, -1 none; guarded by Consumer.mu
	received  atomic.Int64 // offset after the last record handed to the application, -1 none
	processed atomic.Int64 // offset after the last processed record, -1 none
	epoch     atomic.Uint64
	gone      atomic.Bool // no longer assigned
}

type chunk struct {
	cp    *cpart
	epoch uint64
	recs  []*Record
}

func newConsumer(ctx context.Context, c *Client, cc consumerCfg) (*Consumer, error) {
	if len(cc.topics) == 0 && len(cc.partitions) == 0 {
		return nil, fmt.Errorf("client: consumer without Topics or Partitions")
	}
	if cc.group != "" && len(cc.partitions) > 0 {
		return nil, fmt.Errorf("client: Partitions cannot be combined with Group; use Topics")
	}
	if cc.group != "" && len(cc.assignors) == 0 {
		return nil, fmt.Errorf("client: no Assignors")
	}
	for _, t := range cc.topics {
		if t == "" {
			return nil, ErrNoTopic
		}
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	k := &Consumer{c: c, cfg: cc, chunks: make(chan chunk, max(cc.fetchBuffer, 1)),
		notify: make(chan struct{}, 1), restart: make(chan struct{}, 1),
		parts: map[topicPart]*cpart{}, generation: -1, lastGen: -1}
	k.ctx, k.cancel = context.WithCancel(c.ctx)
	c.meta.use(cc.topics...)
	for t := range cc.partitions {
		c.meta.use(t)
	}
	if cc.group == "" {
		if err := k.assignAll(ctx); err != nil {
			k.cancel()
			return nil, err
		}
	} else {
		k.goFunc(k.groupLoop)
	}
	k.goFunc(k.fetchLoop)
	return k, nil
}

func (k *Consumer) goFunc(fn func()) {
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		fn()
	}()
}

func (k *Consumer) wakeApp() {
	select {
	case k.notify <- struct{}{}:
	default:
	}
}

// restartSessionLocked makes the fetch goroutine reopen its session with
// the current assignment and positions. k.mu is held.
func (k *Consumer) restartSessionLocked() {
	if k.roundCancel != nil {
		k.roundCancel()
		k.roundCancel = nil
	}
	select {
	case k.restart <- struct{}{}:
	default:
	}
}

// assignAll sets up a group-less consumer: every partition of Topics, or
// exactly Partitions, from StartOffset.
func (k *Consumer) assignAll(ctx context.Context) error {
	want := map[string][]int32{}
	for t, ps := range k.cfg.partitions {
		want[t] = slices.Compact(slices.Sorted(slices.Values(ps)))
	}
	if len(k.cfg.topics) > 0 {
		resp, err := k.c.metadata(ctx, k.cfg.topics, true)
		if err != nil {
			return err
		}
		for _, t := range resp.Topics {
			if err := checkErr(t.Err); err != nil {
				return fmt.Errorf("client: topic %s: %w", t.Name, err)
			}
			for _, p := range t.Partitions {
				want[t.Name] = append(want[t.Name], p.Partition)
			}
		}
	}
	offs, err := k.startOffsets(ctx, want, nil)
	if err != nil {
		return err
	}
	k.install(want, offs, -1)
	return nil
}

// startOffsets resolves where each partition starts: its committed offset
// when known, else StartOffset.
func (k *Consumer) startOffsets(ctx context.Context, parts map[string][]int32, committed map[topicPart]int64) (map[topicPart]int64, error) {
	out := map[topicPart]int64{}
	var need []topicPart
	for t, ps := range parts {
		for _, p := range ps {
			tp := topicPart{t, p}
			if off, ok := committed[tp]; ok && off >= 0 {
				out[tp] = off
			} else {
				need = append(need, tp)
			}
		}
	}
	if len(need) == 0 {
		return out, nil
	}
	got, err := k.resolve(ctx, need, k.cfg.start)
	if err != nil {
		return nil, err
	}
	maps.Copy(out, got)
	return out, nil
}

// resolve turns an Offset into a concrete offset for each partition. A time
// with no record at or after it resolves to the end of the log.
func (k *Consumer) resolve(ctx context.Context, tps []topicPart, o Offset) (map[topicPart]int64, error) {
	out := make(map[topicPart]int64, len(tps))
	ts, ok := offsetTimestamp(o)
	if !ok {
		for _, tp := range tps {
			out[tp] = o.v
		}
		return out, nil
	}
	req := make([]wire.ListOffsetsPartition, 0, len(tps))
	for _, tp := range tps {
		req = append(req, wire.ListOffsetsPartition{Topic: tp.topic, Partition: tp.partition, Timestamp: ts})
	}
	resp, err := k.c.listOffsetsRaw(ctx, req)
	if err != nil {
		return nil, err
	}
	var again []wire.ListOffsetsPartition
	for _, r := range resp {
		if err := checkErr(r.Err); err != nil {
			return nil, fmt.Errorf("client: list offsets %s/%d: %w", r.Topic, r.Partition, err)
		}
		if r.Offset < 0 { // no record at or after the time: the end
			again = append(again, wire.ListOffsetsPartition{Topic: r.Topic, Partition: r.Partition, Timestamp: -1})
			continue
		}
		out[topicPart{r.Topic, r.Partition}] = r.Offset
	}
	if len(again) > 0 {
		resp, err := k.c.listOffsetsRaw(ctx, again)
		if err != nil {
			return nil, err
		}
		for _, r := range resp {
			if err := checkErr(r.Err); err != nil {
				return nil, err
			}
			out[topicPart{r.Topic, r.Partition}] = r.Offset
		}
	}
	return out, nil
}

// install replaces the assignment and restarts the fetch session.
func (k *Consumer) install(parts map[string][]int32, offs map[topicPart]int64, generation int32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, cp := range k.parts {
		cp.gone.Store(true)
	}
	k.parts = map[topicPart]*cpart{}
	for t, ps := range parts {
		for _, p := range ps {
			tp := topicPart{t, p}
			cp := &cpart{tp: tp, delivered: offs[tp], committed: -1}
			cp.received.Store(-1)
			cp.processed.Store(-1)
			k.parts[tp] = cp
		}
	}
	k.generation = generation
	k.lastGen = generation
	k.lastAssigned = parts
	k.assignedNote = parts
	k.restartSessionLocked()
	k.wakeApp()
}

// ---- fetching ----

func (k *Consumer) fetchLoop() {
	backoff := k.c.cfg.retryBackoff
	for k.ctx.Err() == nil {
		k.mu.Lock()
		var parts []wire.FetchPartition
		pos := map[topicPart]int64{}
		eps := map[topicPart]uint64{}
		cps := map[topicPart]*cpart{}
		for tp, cp := range k.parts {
			parts = append(parts, wire.FetchPartition{Topic: tp.topic, Partition: tp.partition, Offset: cp.delivered})
			pos[tp], eps[tp], cps[tp] = cp.delivered, cp.epoch.Load(), cp
		}
		// Drain a restart request that this round already covers; a
		// later one cancels rctx.
		select {
		case <-k.restart:
		default:
		}
		rctx, cancel := context.WithCancel(k.ctx)
		k.roundCancel = cancel
		k.mu.Unlock()
		if len(parts) == 0 {
			select {
			case <-k.restart:
			case <-k.ctx.Done():
			}
			cancel()
			continue
		}
		err := k.round(rctx, parts, pos, eps, cps)
		cancel()
		if k.ctx.Err() != nil {
			return
		}
		if err == nil {
			backoff = k.c.cfg.retryBackoff
			continue
		}
		k.c.cfg.logger.Debug("fetch session ended", "err", err)
		if leaderMoved(err) {
			k.c.requestRefresh()
		}
		select {
		case <-time.After(backoff):
		case <-k.restart:
		case <-k.ctx.Done():
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// round runs one fetch session per leader node until one of them fails
// (error), or the round must restart (nil): rctx ended, a partition's
// leader changed, or (without a group) a topic grew.
func (k *Consumer) round(rctx context.Context, parts []wire.FetchPartition, pos map[topicPart]int64,
	eps map[topicPart]uint64, cps map[topicPart]*cpart) error {
	metaCh := k.c.meta.changedCh()
	leaders := map[topicPart]int32{}
	byNode := map[int32][]wire.FetchPartition{}
	skipped := false
	for _, fp := range parts {
		leader, _, ok := k.c.meta.leader(fp.Topic, fp.Partition)
		if !ok {
			// Skipped this round; it starts when the metadata names a
			// leader.
			skipped = true
			continue
		}
		leaders[topicPart{fp.Topic, fp.Partition}] = leader
		byNode[leader] = append(byNode[leader], fp)
	}
	sctx, scancel := context.WithCancel(rctx)
	errc := make(chan error, len(byNode))
	var wg sync.WaitGroup
	defer func() {
		scancel()
		wg.Wait()
	}()
	for node, fps := range byNode {
		req := &wire.FetchSessionRequest{MaxBytes: k.cfg.fetchMaxBytes, Partitions: fps}
		// Each session gets its own share of the maps.
		spos := make(map[topicPart]int64, len(fps))
		seps := make(map[topicPart]uint64, len(fps))
		scps := make(map[topicPart]*cpart, len(fps))
		for _, fp := range fps {
			tp := topicPart{fp.Topic, fp.Partition}
			spos[tp], seps[tp], scps[tp] = pos[tp], eps[tp], cps[tp]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- k.session(sctx, node, req, spos, seps, scps)
		}()
	}
	// While partitions wait for a leader, ask for metadata now and then.
	var askC <-chan time.Time
	if skipped {
		k.c.requestRefresh()
		ask := time.NewTicker(time.Second)
		defer ask.Stop()
		askC = ask.C
	}
	for {
		select {
		case err := <-errc:
			return err
		case <-rctx.Done():
			return nil
		case <-askC:
			k.c.requestRefresh()
		case <-metaCh:
			metaCh = k.c.meta.changedCh()
			if k.leadersChanged(parts, leaders) {
				k.c.cfg.logger.Debug("partition leaders changed; moving fetch sessions")
				return nil
			}
			if k.topicsGrew() {
				return nil
			}
		}
	}
}

// leadersChanged reports whether the metadata now names, for any of parts,
// a leader other than the one in leaders (or one where none was known).
func (k *Consumer) leadersChanged(parts []wire.FetchPartition, leaders map[topicPart]int32) bool {
	for _, fp := range parts {
		was, had := leaders[topicPart{fp.Topic, fp.Partition}]
		now, _, ok := k.c.meta.leader(fp.Topic, fp.Partition)
		if had != ok || (ok && now != was) {
			return true
		}
	}
	return false
}

// topicsGrew adds, for a consumer of Topics without a group, the
// partitions the metadata shows beyond those assigned, from the start
// (they are newer than the consumer) or StartOffset when it is a time or
// an offset. It reports whether any were added.
func (k *Consumer) topicsGrew() bool {
	if k.cfg.group != "" || len(k.cfg.topics) == 0 {
		return false
	}
	counts := map[string]int32{}
	k.mu.Lock()
	for tp := range k.parts {
		counts[tp.topic] = max(counts[tp.topic], tp.partition+1)
	}
	k.mu.Unlock()
	want := map[string][]int32{}
	var tps []topicPart
	for _, t := range k.cfg.topics {
		for p := counts[t]; p < k.c.meta.partitions(t); p++ {
			want[t] = append(want[t], p)
			tps = append(tps, topicPart{t, p})
		}
	}
	if len(tps) == 0 {
		return false
	}
	start := k.cfg.start
	if start.kind == offsetEnd {
		start = AtStart()
	}
	ctx, cancel := context.WithTimeout(k.ctx, k.c.cfg.requestTimeout)
	offs, err := k.resolve(ctx, tps, start)
	cancel()
	if err != nil {
		k.c.cfg.logger.Debug("new partitions: cannot resolve start offsets", "err", err)
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return false
	}
	for _, tp := range tps {
		if k.parts[tp] != nil {
			continue
		}
		cp := &cpart{tp: tp, delivered: offs[tp], committed: -1}
		cp.received.Store(-1)
		cp.processed.Store(-1)
		k.parts[tp] = cp
	}
	k.c.cfg.logger.Info("consuming new partitions", "partitions", want)
	k.assignedNote = k.assignmentLocked()
	k.wakeApp()
	return true
}

// session runs one fetch session with node until it fails (error) or ctx
// ends (nil).
func (k *Consumer) session(ctx context.Context, node int32, req *wire.FetchSessionRequest, pos map[topicPart]int64,
	eps map[topicPart]uint64, cps map[topicPart]*cpart) error {
	str, _, _, err := k.c.openStreamTo(ctx, nodeRoute(node))
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	cancelStr := func() {
		str.CancelRead(quic.StreamErrorCode(wire.StreamCodeCanceled))
		str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeCanceled))
	}
	defer cancelStr()
	stop := context.AfterFunc(ctx, cancelStr) // a restart or Close unblocks the read
	defer stop()
	_ = str.SetWriteDeadline(time.Now().Add(k.c.cfg.requestTimeout))
	if _, err := str.Write(wire.AppendFrame(nil, req)); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%w: %w", ErrConnection, err)
	}
	r := bufio.NewReaderSize(str, 16<<10)
	exact := int(req.MaxBytes) + 64<<10 // a push is about MaxBytes: one batch may overshoot
	for {
		f, err := readPush(r, exact, k.c.cfg.maxFrameBytes)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%w: %w", ErrConnection, err)
		}
		var push wire.FetchPush
		if err := decodeAnswer(f, &push); err != nil {
			return err
		}
		tp := topicPart{push.Topic, push.Partition}
		cp := cps[tp]
		if cp == nil {
			continue
		}
		if perr := checkErr(push.Err); perr != nil {
			return k.partitionError(cp, eps[tp], pos[tp], perr)
		}
		recs, next, err := decodeRecords(push.Topic, push.Partition, push.Batches, pos[tp])
		if err != nil {
			k.pushError(fmt.Errorf("client: %s/%d: %w", push.Topic, push.Partition, err))
			return err
		}
		pos[tp] = next
		if len(recs) == 0 {
			continue
		}
		select {
		case k.chunks <- chunk{cp: cp, epoch: eps[tp], recs: recs}:
			k.wakeApp()
		case <-ctx.Done():
			return nil
		}
	}
}

// readPush reads one frame of a fetch session. A payload of at most exact
// bytes (about what the session asked for per push) is read into a buffer
// of exactly its size. Left to itself, wire.ReadFrame grows a fresh buffer
// 64 KiB at a time as the bytes arrive, its defence against a length that
// lies; a 1 MiB push was then copied about twice over and left twice its
// size as garbage (40% of the session goroutine's CPU in BenchmarkConsume,
// and a third of the bytes it allocated). A length up to exact is one the
// session asked for; a larger frame still takes the careful path. The
// buffer is never reused: records alias it.
func readPush(r *bufio.Reader, exact, limit int) (wire.Frame, error) {
	var buf []byte
	if hdr, err := r.Peek(4); err == nil {
		if n := int64(binary.BigEndian.Uint32(hdr)) - 3; n > 0 && n <= int64(exact) && n+7 <= int64(limit) {
			buf = make([]byte, 0, n)
		}
	} // else ReadFrame reads the same bytes and reports the error its way
	return wire.ReadFrame(r, buf, limit)
}

// partitionError handles a push error: an offset out of range resets the
// partition as ResetOffset says; other errors are reported and retried.
func (k *Consumer) partitionError(cp *cpart, epoch uint64, at int64, err error) error {
	if leaderMoved(err) {
		// Not an application's concern: the fetch moves to the leader a
		// fresh metadata names.
		k.c.requestRefresh()
		return err
	}
	if !errors.Is(err, kerr.OffsetOutOfRange) {
		k.pushError(fmt.Errorf("client: fetch %s/%d: %w", cp.tp.topic, cp.tp.partition, err))
		return err
	}
	ctx, cancel := context.WithTimeout(k.ctx, k.c.cfg.requestTimeout)
	defer cancel()
	offs, rerr := k.resolve(ctx, []topicPart{cp.tp}, k.cfg.reset)
	if rerr != nil {
		return rerr
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.parts[cp.tp] == cp && cp.epoch.Load() == epoch {
		k.c.cfg.logger.Info("offset out of range; resetting", "topic", cp.tp.topic, "partition", cp.tp.partition,
			"from", at, "to", offs[cp.tp], "reset", k.cfg.reset.String())
		cp.delivered = offs[cp.tp]
		cp.epoch.Add(1)
	}
	return nil
}

func (k *Consumer) pushError(err error) {
	k.mu.Lock()
	if len(k.errs) < 16 {
		k.errs = append(k.errs, err)
	}
	k.mu.Unlock()
	k.wakeApp()
}

// decodeRecords decodes whole batches, skipping control batches and records
// below from, and returns the records and the offset after the last batch.
// Records are decoded straight into one slab per call (no intermediate
// slice per batch); their Key, Value and header values alias data (or the
// decompressed body).
func decodeRecords(topic string, partition int32, data []byte, from int64) ([]*Record, int64, error) {
	next := from
	total := 0
	for b := data; len(b) >= batch.HeaderSize; {
		h, err := batch.ParseHeader(b)
		if err != nil || h.Size() > len(b) {
			break
		}
		total += int(h.NumRecords)
		b = b[h.Size():]
	}
	// Record counts come from the network: a record takes at least 7
	// bytes uncompressed, so never size the slab past what data could hold
	// (compressed batches grow it by append).
	slab := make([]Record, 0, min(total, len(data)/7+1))
	for len(data) >= batch.HeaderSize {
		h, b, err := batch.Verify(data)
		if errors.Is(err, batch.ErrShort) {
			break // the server sends whole batches; tolerate a cut tail
		}
		if err != nil {
			return nil, next, err
		}
		data = data[len(b):]
		if h.NextOffset() <= from {
			continue
		}
		next = max(next, h.NextOffset())
		if h.IsControl() {
			continue
		}
		body := b[batch.HeaderSize:]
		if h.Codec() != batch.None {
			if body, err = batch.Decompress(h.Codec(), body); err != nil {
				return nil, next, err
			}
		}
		if int(h.NumRecords) > len(body) {
			return nil, next, fmt.Errorf("%w: %d records in %d bytes", batch.ErrCorrupt, h.NumRecords, len(body))
		}
		logAppend := h.Attributes&batch.AttrLogAppendTime != 0
		for i := int32(0); i < h.NumRecords; i++ {
			var r Record
			var tsDelta, offDelta int64
			if body, tsDelta, offDelta, err = readRecord(body, &r); err != nil {
				return nil, next, fmt.Errorf("record %d of batch at %d: %w", i, h.BaseOffset, err)
			}
			r.Offset = h.BaseOffset + offDelta
			if r.Offset < from {
				continue
			}
			ts := h.BaseTimestamp + tsDelta
			if logAppend {
				ts = h.MaxTimestamp
			}
			r.Topic, r.Partition, r.Timestamp = topic, partition, time.UnixMilli(ts)
			slab = append(slab, r)
		}
	}
	out := make([]*Record, len(slab))
	for i := range slab {
		out[i] = &slab[i]
	}
	return out, next, nil
}

// readRecord decodes one record of a RecordBatch v2 body (see
// internal/batch): length, attributes, timestamp delta, offset delta, key,
// value, headers, all varints or varint-prefixed.
func readRecord(b []byte, r *Record) (rest []byte, tsDelta, offDelta int64, err error) {
	corrupt := func(what string) ([]byte, int64, int64, error) {
		return nil, 0, 0, fmt.Errorf("%w: %s", batch.ErrCorrupt, what)
	}
	length, n := binary.Varint(b)
	if n <= 0 || length < 1 || int64(len(b)-n) < length {
		return corrupt("record length")
	}
	rest = b[n+int(length):]
	b = b[n+1 : n+int(length)] // skip the attributes byte
	if tsDelta, n = binary.Varint(b); n <= 0 {
		return corrupt("timestamp delta")
	}
	b = b[n:]
	if offDelta, n = binary.Varint(b); n <= 0 {
		return corrupt("offset delta")
	}
	b = b[n:]
	var ok bool
	if r.Key, b, ok = varBytes(b); !ok {
		return corrupt("key")
	}
	if r.Value, b, ok = varBytes(b); !ok {
		return corrupt("value")
	}
	nh, n := binary.Varint(b)
	if n <= 0 || nh < 0 || nh > int64(len(b)) {
		return corrupt("header count")
	}
	b = b[n:]
	if nh > 0 {
		r.Headers = make([]Header, nh)
		for j := range r.Headers {
			var k []byte
			if k, b, ok = varBytes(b); !ok {
				return corrupt("header key")
			}
			r.Headers[j].Key = string(k)
			if r.Headers[j].Value, b, ok = varBytes(b); !ok {
				return corrupt("header value")
			}
		}
	}
	return rest, tsDelta, offDelta, nil
}

// varBytes reads a varint length (-1 = null) and that many bytes.
func varBytes(b []byte) (v, rest []byte, ok bool) {
	l, n := binary.Varint(b)
	if n <= 0 || l < -1 || l > int64(len(b)-n) {
		return nil, nil, false
	}
	b = b[n:]
	if l < 0 {
		return nil, b, true
	}
	return b[:l:l], b[l:], true
}

// ---- the application's side ----

// take returns the next chunk of records to hand out, advancing delivered
// positions, after handling a pending revocation, assignment callback or
// error.
func (k *Consumer) take(ctx context.Context) (chunk, error) {
	for {
		if err := k.housekeeping(); err != nil {
			return chunk{}, err
		}
		select {
		case ch := <-k.chunks:
			if ch = k.accept(ch); len(ch.recs) > 0 {
				return ch, nil
			}
		case <-k.notify:
		case <-ctx.Done():
			return chunk{}, ctx.Err()
		case <-k.ctx.Done():
			return chunk{}, ErrClosed
		}
	}
}

// accept filters a chunk against the current assignment and positions.
func (k *Consumer) accept(ch chunk) chunk {
	k.mu.Lock()
	defer k.mu.Unlock()
	cp := ch.cp
	if k.parts[cp.tp] != cp || cp.epoch.Load() != ch.epoch {
		return chunk{}
	}
	i := 0
	for i < len(ch.recs) && ch.recs[i].Offset < cp.delivered {
		i++
	}
	ch.recs = ch.recs[i:]
	if len(ch.recs) > 0 {
		cp.delivered = ch.recs[len(ch.recs)-1].Offset + 1
	}
	return ch
}

// housekeeping runs, on the application's goroutine, a pending
// revocation, the OnAssigned callback, and returns a queued error.
func (k *Consumer) housekeeping() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return ErrClosed
	}
	if req := k.revokeReq; req != nil {
		k.mu.Unlock()
		k.revoke(req)
		k.mu.Lock()
	}
	note := k.assignedNote
	k.assignedNote = nil
	var err error
	if len(k.errs) > 0 {
		err = k.errs[0]
		k.errs = k.errs[1:]
	}
	k.mu.Unlock()
	if note != nil && k.cfg.onAssigned != nil {
		k.cfg.onAssigned(note)
	}
	return err
}

// valid reports whether records of ch may still be handed out: no seek,
// reset or revocation since it was taken.
func (k *Consumer) valid(ch chunk) bool {
	return ch.cp != nil && !k.revoking.Load() && !ch.cp.gone.Load() && ch.cp.epoch.Load() == ch.epoch
}

// next returns the held remainder of a chunk, or takes a new one.
func (k *Consumer) next(ctx context.Context) (chunk, error) {
	if ch := k.held; len(ch.recs) > 0 {
		k.held = chunk{}
		if k.valid(ch) {
			return ch, nil
		}
	}
	return k.take(ctx)
}

func (k *Consumer) records(ctx context.Context) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		for {
			ch, err := k.next(ctx)
			if err != nil {
				if errors.Is(err, ErrClosed) {
					return
				}
				if ctx.Err() != nil {
					yield(nil, err)
					return
				}
				if !yield(nil, err) {
					return
				}
				continue
			}
			cp := ch.cp
			for i, r := range ch.recs {
				// A seek, revocation or reset since the chunk was taken
				// drops the rest of it.
				if !k.valid(ch) {
					break
				}
				cp.received.Store(r.Offset + 1)
				ok := yield(r, nil)
				cp.processed.Store(r.Offset + 1)
				if !ok {
					ch.recs = ch.recs[i+1:]
					k.held = ch
					return
				}
			}
		}
	}
}

func (k *Consumer) poll(ctx context.Context) ([]*Record, error) {
	k.markReceivedProcessed()
	ch, err := k.next(ctx)
	if err != nil {
		return nil, err
	}
	out := ch.recs
	ch.cp.received.Store(out[len(out)-1].Offset + 1)
	// Take whatever else is already queued, without waiting.
	for len(out) < 10000 {
		select {
		case more := <-k.chunks:
			if more = k.accept(more); len(more.recs) > 0 {
				out = append(out, more.recs...)
				more.cp.received.Store(more.recs[len(more.recs)-1].Offset + 1)
			}
			continue
		default:
		}
		break
	}
	return out, nil
}

// markReceivedProcessed counts every record handed to the application as
// processed (Poll: the previous Poll's records are done when the next is
// called; Commit and Close: the application is done with what it got).
func (k *Consumer) markReceivedProcessed() {
	k.mu.Lock()
	for _, cp := range k.parts {
		if r := cp.received.Load(); r > cp.processed.Load() {
			cp.processed.Store(r)
		}
	}
	k.mu.Unlock()
}

func (k *Consumer) assignment() map[string][]int32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.assignmentLocked()
}

// assignmentLocked is assignment with k.mu held.
func (k *Consumer) assignmentLocked() map[string][]int32 {
	out := map[string][]int32{}
	for tp := range k.parts {
		out[tp.topic] = append(out[tp.topic], tp.partition)
	}
	for t := range out {
		slices.Sort(out[t])
	}
	return out
}

func (k *Consumer) seek(ctx context.Context, topic string, partition int32, o Offset) error {
	tp := topicPart{topic, partition}
	k.mu.Lock()
	_, ok := k.parts[tp]
	k.mu.Unlock()
	if !ok {
		return fmt.Errorf("client: seek %s/%d: partition not assigned to this consumer", topic, partition)
	}
	offs, err := k.resolve(ctx, []topicPart{tp}, o)
	if err != nil {
		return err
	}
	k.setPositions(offs)
	return nil
}

func (k *Consumer) seekAll(ctx context.Context, o Offset, topics ...string) error {
	k.mu.Lock()
	var tps []topicPart
	for tp := range k.parts {
		if len(topics) == 0 || slices.Contains(topics, tp.topic) {
			tps = append(tps, tp)
		}
	}
	k.mu.Unlock()
	if len(tps) == 0 {
		return nil
	}
	offs, err := k.resolve(ctx, tps, o)
	if err != nil {
		return err
	}
	k.setPositions(offs)
	return nil
}

func (k *Consumer) setPositions(offs map[topicPart]int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for tp, off := range offs {
		if cp := k.parts[tp]; cp != nil {
			cp.delivered = off
			// Records at or after a backward seek were not handed out as
			// far as commits are concerned: the app will see them again.
			if cp.received.Load() > off {
				cp.received.Store(off)
			}
			cp.epoch.Add(1)
		}
	}
	k.restartSessionLocked()
}

// ---- commits ----

func (k *Consumer) commit(ctx context.Context) error {
	if k.cfg.group == "" {
		return nil
	}
	k.markReceivedProcessed()
	return k.commitProcessed(ctx)
}

func (k *Consumer) commitRecords(ctx context.Context, recs ...*Record) error {
	if k.cfg.group == "" || len(recs) == 0 {
		return nil
	}
	offs := map[topicPart]int64{}
	k.mu.Lock()
	for _, r := range recs {
		tp := topicPart{r.Topic, r.Partition}
		cp := k.parts[tp]
		if cp == nil {
			k.mu.Unlock()
			return fmt.Errorf("client: commit %s: partition not assigned to this consumer", r)
		}
		if r.Offset >= cp.received.Load() {
			k.mu.Unlock()
			return fmt.Errorf("client: commit %s: record not delivered by this consumer", r)
		}
		offs[tp] = max(offs[tp], r.Offset+1)
	}
	k.mu.Unlock()
	return k.commitOffsets(ctx, offs)
}

// commitProcessed commits every partition's processed offset that moved
// since the last commit.
func (k *Consumer) commitProcessed(ctx context.Context) error {
	offs := map[topicPart]int64{}
	k.mu.Lock()
	for tp, cp := range k.parts {
		if p := cp.processed.Load(); p >= 0 && p != cp.committed {
			offs[tp] = p
		}
	}
	k.mu.Unlock()
	if len(offs) == 0 {
		return nil
	}
	return k.commitOffsets(ctx, offs)
}

func (k *Consumer) commitOffsets(ctx context.Context, offs map[topicPart]int64) error {
	k.mu.Lock()
	member, gen := k.memberID, k.generation
	k.mu.Unlock()
	if gen < 0 {
		return ErrNotInGroup
	}
	req := &wire.OffsetCommitRequest{Group: k.cfg.group, MemberID: member, InstanceID: k.cfg.instanceID, Generation: gen}
	for tp, off := range offs {
		req.Offsets = append(req.Offsets, wire.CommittedOffset{Topic: tp.topic, Partition: tp.partition, Offset: off, LeaderEpoch: -1})
	}
	if err := k.c.simple(ctx, req); err != nil {
		return err
	}
	k.mu.Lock()
	for tp, off := range offs {
		if cp := k.parts[tp]; cp != nil {
			cp.committed = off
		}
	}
	k.mu.Unlock()
	return nil
}

// ---- close ----

func (k *Consumer) close(ctx context.Context) error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	k.mu.Unlock()
	k.cancel()
	k.wg.Wait()
	if k.cfg.group == "" {
		return nil
	}
	var errs []error
	if k.cfg.autoCommit {
		k.markReceivedProcessed()
		if err := k.commitProcessed(ctx); err != nil && !errors.Is(err, ErrNotInGroup) {
			errs = append(errs, fmt.Errorf("client: commit on close: %w", err))
		}
	}
	k.mu.Lock()
	member := k.memberID
	k.mu.Unlock()
	// A static member does not leave: the group keeps its partitions for
	// it until its session times out, so a restart takes them straight
	// back (Kafka does the same).
	if member != "" && k.cfg.instanceID == "" {
		if err := k.leave(ctx, member); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (k *Consumer) leave(ctx context.Context, member string) error {
	var resp wire.LeaveGroupResponse
	err := k.c.roundTrip(ctx, &wire.LeaveGroupRequest{Group: k.cfg.group,
		Members: []wire.LeaveMember{{MemberID: member, InstanceID: k.cfg.instanceID}}}, &resp)
	if err == nil {
		err = checkErr(resp.Err)
	}
	if err == nil && len(resp.Members) > 0 {
		err = checkErr(resp.Members[0])
	}
	if err != nil && !errors.Is(err, kerr.UnknownMemberID) {
		return fmt.Errorf("client: leave group %s: %w", k.cfg.group, err)
	}
	return nil
}
