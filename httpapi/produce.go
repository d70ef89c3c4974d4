package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/batch"
)

// Content types of the produce endpoints.
const (
	ctJSON       = "application/json"
	ctNDJSON     = "application/x-ndjson"
	ctV2         = "application/vnd.kafka.v2+json"
	ctV2JSON     = "application/vnd.kafka.json.v2+json"
	ctV2Binary   = "application/vnd.kafka.binary.v2+json"
	ctEventSteam = "text/event-stream"
)

// defaultMaxMessageBytes is used when a topic's max.message.bytes is not
// readable: Kafka's default.
const defaultMaxMessageBytes = 1<<20 + 12

// mediaType is the lower-cased media type of a Content-Type header ("" when
// absent or unparsable).
func mediaType(ct string) string {
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "invalid"
	}
	return mt
}

// isNDJSON reports a streaming produce.
func isNDJSON(r *http.Request) bool {
	switch mediaType(r.Header.Get("Content-Type")) {
	case ctNDJSON, "application/jsonl", "application/x-jsonlines":
		return true
	}
	return false
}

// parseAcks reads ?acks= (0, 1, all or -1; default all).
func parseAcks(s string) (bus.Acks, error) {
	switch s {
	case "", "all", "-1":
		return bus.AcksAll, nil
	case "1":
		return bus.AcksLeader, nil
	case "0":
		return bus.AcksNone, nil
	}
	return 0, errorf(CodeBadParam, "acks=%q: want 0, 1 or all", s)
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads the whole body, at most MaxBodyBytes. The caller gives
// the buffer back with putBody once nothing aliases it.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (*bytes.Buffer, error) {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)); err != nil {
		putBody(buf)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, toError(err)
		}
		return nil, &Error{Code: CodeBadJSON, Message: "reading the body: " + err.Error(), err: err}
	}
	return buf, nil
}

func putBody(buf *bytes.Buffer) {
	if buf.Cap() <= 1<<20 { // do not pin large buffers
		bodyPool.Put(buf)
	}
}

// ensureTopic resolves the topic of a produce, creating it when the broker
// auto-creates topics (Kafka's auto.create.topics.enable).
func (s *Server) ensureTopic(ctx context.Context, topic string) (bus.TopicInfo, error) {
	info, err := s.b.EnsureTopic(ctx, topic)
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return info, &Error{Code: CodeTopicNotFound, Message: fmt.Sprintf("topic %q not found", topic), err: err}
	}
	if err == nil && len(info.Partitions) == 0 {
		return info, errorf(CodeRetriable, "topic %q has no partitions yet", topic)
	}
	return info, err
}

// plan is a validated produce: the records of each partition encoded as
// one buffer of batches, so that each partition takes one Broker.Produce
// and the records of a request to a partition are written all or not at
// all.
type plan struct {
	topic string
	parts []partPlan // by partition number
	where []int32    // partition of each record (-1 if it has an error)
	errs  []*Error   // per record: why it is not written (nil: it is)
}

type partPlan struct {
	partition int32
	idx       []int  // the partition's records, in request order
	batches   []byte // one or more concatenated RecordBatch v2
}

// firstError is the first record error, named by its index.
func (p *plan) firstError() *Error {
	for i, e := range p.errs {
		if e != nil {
			return &Error{Code: e.Code, Message: fmt.Sprintf("record %d: %s", i, e.Message), err: e.err}
		}
	}
	return nil
}

// makePlan assigns partitions and builds the batches. A record with an
// explicit partition goes there; a keyed record goes where Java Kafka's
// default partitioner would put it (murmur2); the unkeyed records of one
// request all go to one partition, the next one for each request (round
// robin per request, which keeps them in one batch like Kafka's sticky
// partitioner). Records in recs with a non-nil pre-set error (NDJSON lines
// that failed to decode) are skipped.
func (s *Server) makePlan(info bus.TopicInfo, recs []inRecord, pre []*Error) *plan {
	n := int32(len(info.Partitions))
	p := &plan{topic: info.Name, where: make([]int32, len(recs)), errs: make([]*Error, len(recs))}
	copy(p.errs, pre)
	limit := maxMessageBytes(info)
	sticky := int32(-1)
	var byPart map[int32][]int
	for i := range recs {
		p.where[i] = -1
		if p.errs[i] != nil {
			continue
		}
		r := &recs[i]
		part := r.partition
		switch {
		case part >= 0:
			if part >= n {
				p.errs[i] = errorf(CodePartitionNotFound, "partition %d not found: topic %q has %d", part, info.Name, n)
				continue
			}
		case r.rec.Key != nil:
			part = keyPartition(r.rec.Key, n)
		default:
			if sticky < 0 {
				sticky = int32(s.rr.Add(1) % uint32(n))
			}
			part = sticky
		}
		if recordTooLarge(&r.rec, limit) {
			p.errs[i] = errorf(CodeTooLarge, "record larger than the topic's max.message.bytes (%d)", limit)
			continue
		}
		if byPart == nil {
			byPart = make(map[int32][]int, 1)
		}
		byPart[part] = append(byPart[part], i)
		p.where[i] = part
	}
	for part := int32(0); part < n && len(byPart) > 0; part++ {
		idx, ok := byPart[part]
		if !ok {
			continue
		}
		delete(byPart, part)
		rs := make([]batch.Record, len(idx))
		for j, i := range idx {
			rs[j] = recs[i].rec
		}
		b, err := buildBatches(rs, limit)
		if err != nil {
			for _, i := range idx {
				p.errs[i] = toError(err)
				p.where[i] = -1
			}
			continue
		}
		p.parts = append(p.parts, partPlan{partition: part, idx: idx, batches: b})
	}
	return p
}

func maxMessageBytes(info bus.TopicInfo) int {
	if n, err := strconv.Atoi(info.Effective[bus.ConfigMaxMessageBytes]); err == nil && n > batch.HeaderSize {
		return n
	}
	return defaultMaxMessageBytes
}

// recordTooLarge reports whether r alone makes a batch over limit.
func recordTooLarge(r *batch.Record, limit int) bool {
	size := batch.HeaderSize + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		size += len(h.Key) + len(h.Value)
	}
	if size+64 <= limit { // 64 covers every varint of the record
		return false
	}
	enc := batch.AppendRecord(nil, r, 0, r.Timestamp, r.Timestamp)
	return batch.HeaderSize+len(enc)+20 > limit // + room for the deltas
}

// buildBatches encodes recs as one batch, or, when that would pass the
// topic's max.message.bytes, as several batches (halving until each fits)
// concatenated into one buffer for a single Broker.Produce.
func buildBatches(recs []batch.Record, limit int) ([]byte, error) {
	b, err := batch.Build(batch.NoProducer, recs)
	if err != nil {
		return nil, err
	}
	if len(b) <= limit {
		return b, nil
	}
	if len(recs) == 1 {
		return nil, fmt.Errorf("%w: record of %d bytes over max.message.bytes %d", kerr.MessageTooLarge, len(b), limit)
	}
	mid := len(recs) / 2
	a, err := buildBatches(recs[:mid], limit)
	if err != nil {
		return nil, err
	}
	c, err := buildBatches(recs[mid:], limit)
	if err != nil {
		return nil, err
	}
	return append(a, c...), nil
}

// delivery is the outcome of one record.
type delivery struct {
	partition int32
	offset    int64 // -1 when unknown (acks=0) or failed
	err       *Error
}

// execute appends each partition's batches, the partitions in parallel
// (each waits for its own fsync), and reports every record.
func (s *Server) execute(ctx context.Context, p *plan, acks bus.Acks) []delivery {
	ds := make([]delivery, len(p.where))
	for i := range ds {
		ds[i] = delivery{partition: p.where[i], offset: -1, err: p.errs[i]}
	}
	one := func(pp *partPlan) {
		res, err := s.b.Produce(ctx, p.topic, pp.partition, pp.batches, acks)
		if errors.Is(err, kerr.NotLeaderForPartition) && s.cfg.Forward != nil {
			res, err = s.cfg.Forward(ctx, p.topic, pp.partition, pp.batches)
		}
		if err != nil {
			e := toError(err)
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				e.Code = CodeRetriable // deleted or shrunk under us
			}
			for _, i := range pp.idx {
				ds[i].err = e
			}
			return
		}
		if got := res.LastOffset - res.BaseOffset + 1; got != int64(len(pp.idx)) {
			s.log.Warn("produce: offsets do not match the record count", "topic", p.topic,
				"partition", pp.partition, "records", len(pp.idx), "offsets", got)
		}
		for j, i := range pp.idx {
			ds[i].offset = res.BaseOffset + int64(j)
		}
	}
	if len(p.parts) == 1 {
		one(&p.parts[0])
		return ds
	}
	var wg sync.WaitGroup
	for k := range p.parts {
		wg.Go(func() { one(&p.parts[k]) })
	}
	wg.Wait()
	return ds
}

// produceResponse is the v1 produce answer: one entry per record, in
// request order.
type produceResponse struct {
	ErrorCode int            `json:"error_code,omitempty"`
	Message   string         `json:"message,omitempty"`
	Offsets   []offsetReport `json:"offsets"`
}

type offsetReport struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	ErrorCode int    `json:"error_code,omitempty"`
	Error     string `json:"error,omitempty"`
}

// handleProduce is POST /v1/topics/{topic}/records: a JSON body, or an
// NDJSON stream.
func (s *Server) handleProduce(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	acks, err := parseAcks(r.URL.Query().Get("acks"))
	if err != nil {
		WriteError(w, err)
		return
	}
	switch mt := mediaType(r.Header.Get("Content-Type")); mt {
	case "", ctJSON:
	default:
		if isNDJSON(r) {
			s.produceStream(w, r, topic, acks)
			return
		}
		WriteError(w, errorf(CodeUnsupportedType, "Content-Type %q: want %s or %s", mt, ctJSON, ctNDJSON))
		return
	}
	buf, err := s.readBody(w, r)
	if err != nil {
		WriteError(w, err)
		return
	}
	recs, err := decodeProduceBody(buf.Bytes())
	putBody(buf)
	if err != nil {
		WriteError(w, err)
		return
	}
	info, err := s.ensureTopic(r.Context(), topic)
	if err != nil {
		WriteError(w, err)
		return
	}
	p := s.makePlan(info, recs, nil)
	if e := p.firstError(); e != nil {
		WriteError(w, e) // nothing written
		return
	}
	if acks == bus.AcksNone {
		// Fire and forget, as Kafka's acks=0: answer first, then append.
		// The connection's next request waits for this handler, so the
		// requests of one connection are still appended in order.
		writeJSON(w, http.StatusAccepted, produceResponse{Offsets: reports(s.pending(p))})
		_ = http.NewResponseController(w).Flush()
		s.logFailures(s.execute(context.WithoutCancel(r.Context()), p, acks), topic)
		return
	}
	ds := s.execute(r.Context(), p, acks)
	resp := produceResponse{Offsets: reports(ds)}
	status, failed := http.StatusOK, 0
	var first *Error
	for _, d := range ds {
		if d.err != nil {
			failed++
			if first == nil {
				first = d.err
			}
		}
	}
	switch {
	case failed == len(ds):
		status, resp.ErrorCode, resp.Message = first.Status(), first.Code, first.Message
	case failed > 0:
		status = http.StatusMultiStatus // some partitions written, some not
	}
	writeJSON(w, status, resp)
}

// pending reports the planned partitions without offsets (acks=0).
func (s *Server) pending(p *plan) []delivery {
	ds := make([]delivery, len(p.where))
	for i := range ds {
		ds[i] = delivery{partition: p.where[i], offset: -1, err: p.errs[i]}
	}
	return ds
}

func (s *Server) logFailures(ds []delivery, topic string) {
	for _, d := range ds {
		if d.err != nil {
			s.log.Warn("acks=0 produce failed", "topic", topic, "partition", d.partition, "err", d.err.Message)
			return
		}
	}
}

func reports(ds []delivery) []offsetReport {
	out := make([]offsetReport, len(ds))
	for i, d := range ds {
		out[i] = offsetReport{Partition: d.partition, Offset: d.offset}
		if d.err != nil {
			out[i].ErrorCode, out[i].Error = d.err.Code, d.err.Message
		}
	}
	return out
}
