package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/wispbus/wisp/bus"
)

// NDJSON groups: lines that have already arrived are produced together (one
// batch per partition), up to these bounds; a slow writer gets one report
// per line as soon as its line is written.
const (
	streamGroupRecords = 1000
	streamGroupBytes   = 1 << 20
)

// streamReport is one line of the NDJSON answer: the delivery of one input
// line, named by its 1-based line number.
type streamReport struct {
	Line      int    `json:"line"`
	Partition *int32 `json:"partition,omitempty"`
	Offset    *int64 `json:"offset,omitempty"`
	ErrorCode int    `json:"error_code,omitempty"`
	Error     string `json:"error,omitempty"`
}

// produceStream handles an NDJSON produce: one record object per line,
// read as they arrive; one report per record line written back and flushed
// as it goes. Lines are independent: a bad line gets an error report and
// is not written, the others are. Blank lines are skipped. There is no
// limit on the stream, only on each line (MaxBodyBytes). The formats of
// keys and values default to ?key_format= and ?value_format=.
func (s *Server) produceStream(w http.ResponseWriter, r *http.Request, topic string, acks bus.Acks) {
	q := r.URL.Query()
	keyF, err := parseFormat(q.Get("key_format"), formatJSON)
	if err != nil {
		WriteError(w, errorf(CodeBadParam, "key_format: %v", err))
		return
	}
	valF, err := parseFormat(q.Get("value_format"), formatJSON)
	if err != nil {
		WriteError(w, errorf(CodeBadParam, "value_format: %v", err))
		return
	}
	info, err := s.ensureTopic(r.Context(), topic)
	if err != nil {
		WriteError(w, err)
		return
	}
	rc := http.NewResponseController(w)
	// HTTP/1 servers otherwise read the whole body before the first write.
	_ = rc.EnableFullDuplex()
	// A Close must not wait for a client that keeps the stream open: the
	// read deadline wakes a blocked read, the loop ends after its group.
	stop := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() {
		select {
		case <-s.closing:
			_ = rc.SetReadDeadline(time.Now())
		case <-stop:
		}
	})
	defer watcher.Wait()
	defer close(stop)

	w.Header().Set("Content-Type", ctNDJSON)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	br := bufio.NewReaderSize(r.Body, 64<<10)
	lr := lineReader{br: br, max: s.cfg.MaxBodyBytes}
	enc := json.NewEncoder(w)
	var (
		lines []int // line number of each record of the group
		recs  []inRecord
		errs  []*Error
	)
	for {
		lines, recs, errs = lines[:0], recs[:0], errs[:0]
		size := 0
		var rerr error
		for len(recs) < streamGroupRecords && size < streamGroupBytes {
			line, tooLong, err := lr.next()
			if tooLong {
				lines, recs = append(lines, lr.n), append(recs, inRecord{})
				errs = append(errs, errorf(CodeTooLarge, "line longer than %d bytes", s.cfg.MaxBodyBytes))
			} else if len(bytes.TrimSpace(line)) > 0 {
				rec, derr := decodeRecordLine(line, keyF, valF)
				var e *Error
				if derr != nil {
					e = jsonError(derr)
				}
				lines, recs, errs = append(lines, lr.n), append(recs, rec), append(errs, e)
				size += len(line)
			}
			if err != nil {
				rerr = err
				break
			}
			if br.Buffered() == 0 {
				break // nothing more has arrived: answer what we have
			}
		}
		if len(recs) > 0 {
			p := s.makePlan(info, recs, errs)
			var ds []delivery
			if acks == bus.AcksNone {
				ds = s.pending(p)
			} else {
				ds = s.execute(r.Context(), p, acks)
			}
			for i, d := range ds {
				rep := streamReport{Line: lines[i]}
				if d.err != nil {
					rep.ErrorCode, rep.Error = d.err.Code, d.err.Message
				} else {
					rep.Partition, rep.Offset = &d.partition, &d.offset
				}
				if err := enc.Encode(rep); err != nil {
					return
				}
			}
			if err := rc.Flush(); err != nil {
				return
			}
			if acks == bus.AcksNone {
				s.logFailures(s.execute(context.WithoutCancel(r.Context()), p, acks), topic)
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				s.log.Debug("ndjson stream ended", "topic", topic, "err", rerr)
			}
			return
		}
		select {
		case <-s.closing:
			return
		default:
		}
	}
}

// lineReader reads lines of at most max bytes; longer lines are skipped
// and reported as too long.
type lineReader struct {
	br  *bufio.Reader
	max int64
	n   int // number of the line last returned
	buf []byte
}

// next returns the next line without its newline. The slice is valid until
// the next call. err is set with the last line (possibly empty) of the
// stream.
func (l *lineReader) next() (line []byte, tooLong bool, err error) {
	l.n++
	l.buf = l.buf[:0]
	for {
		chunk, err := l.br.ReadSlice('\n')
		if !tooLong {
			if int64(len(l.buf)+len(chunk)) > l.max+1 { // +1: the newline
				tooLong, l.buf = true, l.buf[:0]
			} else if err == nil && len(l.buf) == 0 {
				return chunk[:len(chunk)-1], false, nil // the common case: no copy
			} else {
				l.buf = append(l.buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			return l.buf, tooLong, err
		}
		if tooLong {
			return nil, true, nil
		}
		return bytes.TrimSuffix(l.buf, []byte{'\n'}), false, nil
	}
}
