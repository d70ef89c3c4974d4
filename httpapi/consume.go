package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/batch"
)

const (
	defaultFetchRecords = 100
	maxFetchRecords     = 10000
	fetchBytes          = 1 << 20  // per Broker.Fetch
	fetchBudget         = 16 << 20 // batch bytes read for one answer, at most (past one batch)
	maxFetchWait        = 30 * time.Second
	tailRecords         = 1000 // records per SSE write burst
	defaultPingInterval = 15 * time.Second
)

var errStopFetch = errors.New("httpapi: enough records")

// partitionParam resolves ?partition= (default 0) against the topic.
func (s *Server) partitionParam(topic, v string) (int32, error) {
	info, err := s.b.Topic(topic)
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return 0, &Error{Code: CodeTopicNotFound, Message: fmt.Sprintf("topic %q not found", topic), err: err}
	}
	if err != nil {
		return 0, err
	}
	p := int64(0)
	if v != "" {
		if p, err = strconv.ParseInt(v, 10, 32); err != nil || p < 0 {
			return 0, errorf(CodeBadParam, "partition=%q: want a partition number", v)
		}
	}
	if p >= int64(len(info.Partitions)) {
		return 0, errorf(CodePartitionNotFound, "partition %d not found: topic %q has %d", p, topic, len(info.Partitions))
	}
	return int32(p), nil
}

// offsetParam resolves ?offset= : a number, "earliest" or "latest" (the
// high watermark); def (bus.Earliest or bus.Latest) when absent.
func (s *Server) offsetParam(topic string, partition int32, v string, def int64) (int64, error) {
	ts := def
	switch v {
	case "":
	case "earliest":
		ts = bus.Earliest
	case "latest":
		ts = bus.Latest
	default:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, errorf(CodeBadParam, "offset=%q: want an offset, earliest or latest", v)
		}
		return n, nil
	}
	off, _, err := s.b.ListOffset(topic, partition, ts)
	return off, err
}

func intParam(q string, v string, def, lo, hi int64) (int64, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, errorf(CodeBadParam, "%s=%q: want an integer in [%d, %d]", q, v, lo, hi)
	}
	return n, nil
}

// fetchRecords reads up to max records from offset without waiting. next
// is the offset to continue from (past compacted gaps).
func (s *Server) fetchRecords(ctx context.Context, topic string, partition int32, offset int64, max int) (out []outRecord, next, hw int64, err error) {
	next = offset
	budget := fetchBudget
	for len(out) < max && budget > 0 {
		res, err := s.b.Fetch(ctx, topic, partition, next, fetchBytes)
		hw = res.HighWatermark
		if err != nil {
			if len(out) > 0 {
				return out, next, hw, nil
			}
			return nil, next, hw, err
		}
		if len(res.Batches) == 0 {
			break
		}
		budget -= len(res.Batches)
		before := next
		err = batch.Each(res.Batches, func(h batch.Header, raw []byte) error {
			if h.NextOffset() <= next {
				return nil // wholly before the wanted offset
			}
			if len(out) >= max {
				return errStopFetch
			}
			recs, err := batch.Records(raw)
			if err != nil {
				return err
			}
			for i := range recs {
				if recs[i].Offset < next {
					continue
				}
				if len(out) >= max {
					return errStopFetch
				}
				out = append(out, newOutRecord(topic, partition, &recs[i]))
				next = recs[i].Offset + 1
			}
			next = h.NextOffset()
			return nil
		})
		if err != nil && !errors.Is(err, errStopFetch) {
			return nil, offset, hw, &Error{Code: CodeInternal, Message: "reading stored batches: " + err.Error(), err: err}
		}
		if next == before || errors.Is(err, errStopFetch) {
			break
		}
	}
	return out, next, hw, nil
}

// handleFetch is GET /v1/topics/{topic}/records?partition=&offset=&max=&timeout_ms=.
// It answers a JSON array of records (possibly empty). With timeout_ms it
// long-polls: an empty read waits up to that long for new records. The
// headers X-Wisp-Next-Offset and X-Wisp-High-Watermark tell where to go on.
func (s *Server) handleFetch(w http.ResponseWriter, r *http.Request) {
	topic, q := r.PathValue("topic"), r.URL.Query()
	partition, err := s.partitionParam(topic, q.Get("partition"))
	if err != nil {
		WriteError(w, err)
		return
	}
	max, err := intParam("max", q.Get("max"), defaultFetchRecords, 1, maxFetchRecords)
	if err != nil {
		WriteError(w, err)
		return
	}
	waitMS, err := intParam("timeout_ms", q.Get("timeout_ms"), 0, 0, maxFetchWait.Milliseconds())
	if err != nil {
		WriteError(w, err)
		return
	}
	offset, err := s.offsetParam(topic, partition, q.Get("offset"), bus.Earliest)
	if err != nil {
		WriteError(w, err)
		return
	}
	ctx := r.Context()
	var timeout <-chan time.Time
	if waitMS > 0 {
		t := time.NewTimer(time.Duration(waitMS) * time.Millisecond)
		defer t.Stop()
		timeout = t.C
	}
	for {
		// Watch before reading: a produce between the read and the wait
		// still wakes us.
		changed, err := s.b.Watch(topic, partition)
		if err != nil {
			WriteError(w, err)
			return
		}
		out, next, hw, err := s.fetchRecords(ctx, topic, partition, offset, int(max))
		if err != nil {
			WriteError(w, err)
			return
		}
		if len(out) > 0 || timeout == nil {
			h := w.Header()
			h.Set("X-Wisp-Next-Offset", strconv.FormatInt(next, 10))
			h.Set("X-Wisp-High-Watermark", strconv.FormatInt(hw, 10))
			if out == nil {
				out = []outRecord{}
			}
			writeJSON(w, http.StatusOK, out)
			return
		}
		offset = next
		select {
		case <-changed:
		case <-timeout:
			timeout = nil // one more read, then answer
		case <-ctx.Done():
			return
		case <-s.closing:
			timeout = nil
		}
	}
}

// handleTail is GET /v1/topics/{topic}/records/stream?partition=&offset=:
// a server-sent-events stream of the partition's records from offset
// (default: the high watermark, i.e. new records only; a reconnecting
// EventSource's Last-Event-ID resumes after that offset). Each record is an
// event "record" with id = its offset and the record JSON as data; ": ping"
// comments keep idle connections open. It ends when the client goes, the
// server closes, or with an "error" event.
func (s *Server) handleTail(w http.ResponseWriter, r *http.Request) {
	topic, q := r.PathValue("topic"), r.URL.Query()
	partition, err := s.partitionParam(topic, q.Get("partition"))
	if err != nil {
		WriteError(w, err)
		return
	}
	var offset int64
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n < -1 {
			WriteError(w, errorf(CodeBadParam, "Last-Event-ID %q: want an offset", id))
			return
		}
		offset = n + 1
	} else if offset, err = s.offsetParam(topic, partition, q.Get("offset"), bus.Latest); err != nil {
		WriteError(w, err)
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", ctEventSteam)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // tell proxies not to buffer
	w.WriteHeader(http.StatusOK)
	// The first bytes tell the client the subscription stands: records
	// produced from now on are in the stream.
	if _, err := fmt.Fprintf(w, ": tail %s/%d from offset %d\n\n", topic, partition, offset); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	ping := time.NewTicker(s.ping)
	defer ping.Stop()
	ctx := r.Context()
	var ev []byte
	for {
		changed, err := s.b.Watch(topic, partition)
		if err != nil {
			s.tailError(w, rc, err)
			return
		}
		out, next, _, err := s.fetchRecords(ctx, topic, partition, offset, tailRecords)
		if errors.Is(err, kerr.OffsetOutOfRange) {
			// Retention removed what we were about to read: go on from
			// the log start, as a consumer with auto.offset.reset=earliest.
			if start, _, lerr := s.b.ListOffset(topic, partition, bus.Earliest); lerr == nil && offset < start {
				offset = start
				continue
			}
		}
		if err != nil {
			s.tailError(w, rc, err)
			return
		}
		offset = next
		if len(out) > 0 {
			ev = ev[:0]
			for i := range out {
				data, err := json.Marshal(&out[i])
				if err != nil {
					continue
				}
				ev = fmt.Appendf(ev, "id: %d\nevent: record\ndata: ", out[i].Offset)
				ev = append(append(ev, data...), "\n\n"...)
			}
			if _, err := w.Write(ev); err != nil || rc.Flush() != nil {
				return
			}
			continue
		}
		select {
		case <-changed:
		case <-ping.C:
			// Also re-reads, which notices a deleted topic.
			if _, err := w.Write([]byte(": ping\n\n")); err != nil || rc.Flush() != nil {
				return
			}
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		}
	}
}

func (s *Server) tailError(w http.ResponseWriter, rc *http.ResponseController, err error) {
	data, _ := json.Marshal(toError(err))
	_, _ = fmt.Fprintf(w, "event: error\ndata: %s\n\n", data)
	_ = rc.Flush()
}
