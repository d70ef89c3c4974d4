package client

import (
	"fmt"
	"time"
)

// Record is one message. A producer sets Topic, Key, Value, Headers and
// optionally Timestamp (zero means now, and is filled in) and Partition
// (used only with ManualPartitioner); the client fills in Partition when
// the record is buffered and Offset once the broker has it (-1 with
// AcksNone). Do not modify a record between Produce and its promise. A
// consumer receives every field filled in; Key, Value and header values
// share memory with the fetched batches (never reused, but holding one
// keeps its whole fetch in memory: copy small values kept for long).
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // nil is a null key (Kafka semantics: no key)
	Value     []byte // nil is a null value (a tombstone on compacted topics)
	Headers   []Header
	Timestamp time.Time
}

// Header is one record header. Keys need not be unique.
type Header struct {
	Key   string
	Value []byte
}

// String is a short description for logs: topic/partition@offset.
func (r *Record) String() string {
	return fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset)
}

// Offset names a position in a partition for consumer start positions,
// seeks and offset look-ups: the start of the log, its end, an exact offset
// or the first record at or after a time.
type Offset struct {
	kind offsetKind
	v    int64
}

type offsetKind int8

const (
	offsetStart offsetKind = iota
	offsetEnd
	offsetExact
	offsetTime
)

// AtStart is the earliest offset still in the log (Kafka "earliest").
func AtStart() Offset { return Offset{kind: offsetStart} }

// AtEnd is the high watermark: only records produced from now on (Kafka
// "latest").
func AtEnd() Offset { return Offset{kind: offsetEnd} }

// At is an exact offset. An offset outside the log is reset as the
// consumer's ResetOffset says.
func At(offset int64) Offset { return Offset{kind: offsetExact, v: offset} }

// AtTime is the first record whose timestamp is at or after t; the end of
// the log when there is none.
func AtTime(t time.Time) Offset { return Offset{kind: offsetTime, v: t.UnixMilli()} }

// String describes the offset ("start", "end", "42", "time:2024-...").
func (o Offset) String() string {
	switch o.kind {
	case offsetStart:
		return "start"
	case offsetEnd:
		return "end"
	case offsetExact:
		return fmt.Sprint(o.v)
	default:
		return "time:" + time.UnixMilli(o.v).UTC().Format(time.RFC3339Nano)
	}
}
