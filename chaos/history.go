package chaos

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind is what a client operation did.
type Kind uint8

// Operation kinds.
const (
	Send   Kind = iota // a producer sent record ID
	Poll               // a group consumer received ID at Partition/Offset
	Assign             // a consumer was given (or lost) Partition: its position restarts
)

// Outcome is how an operation ended, as in Jepsen: an invoke is followed
// by ok (it happened), fail (it certainly did not) or info (unknown: it may
// have happened).
type Outcome uint8

// Outcomes.
const (
	Invoke Outcome = iota
	OK
	Fail
	Info
)

func (o Outcome) String() string {
	return [...]string{"invoke", "ok", "fail", "info"}[o]
}

// RecordID identifies a produced record: its producer and sequence number.
// It is the record's value on the wire ("producer:seq").
type RecordID struct {
	Producer string
	Seq      int64
}

func (id RecordID) String() string { return id.Producer + ":" + strconv.FormatInt(id.Seq, 10) }

// ParseRecordID reads a record value written by the workload.
func ParseRecordID(v []byte) (RecordID, bool) {
	p, s, ok := strings.Cut(string(v), ":")
	if !ok {
		return RecordID{}, false
	}
	seq, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return RecordID{}, false
	}
	return RecordID{Producer: p, Seq: seq}, true
}

// Op is one entry of a history.
type Op struct {
	Process   string // producer or consumer name
	Kind      Kind
	Outcome   Outcome
	ID        RecordID
	Topic     string
	Partition int32
	Offset    int64 // the acknowledged or polled offset; -1 when unknown
	Time      time.Time
	Err       string
}

func (o Op) String() string {
	return fmt.Sprintf("%s %s %v %s %s/%d@%d %s", o.Time.Format("15:04:05.000"), o.Process, o.Kind, o.Outcome, o.Topic, o.Partition, o.Offset, o.ID)
}

// History is the concurrent record of every client operation of a run.
type History struct {
	mu    sync.Mutex
	ops   []Op
	acked int
}

// Add appends op, stamping its time when unset.
func (h *History) Add(op Op) {
	if op.Time.IsZero() {
		op.Time = time.Now()
	}
	h.mu.Lock()
	h.ops = append(h.ops, op)
	if op.Kind == Send && op.Outcome == OK {
		h.acked++
	}
	h.mu.Unlock()
}

// Ops returns a copy of the operations so far.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// Acked counts the successful sends so far.
func (h *History) Acked() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.acked
}
