package wisp

import (
	"fmt"
	"os"
	"time"
)

// Header is one record header. Value is nil for a null header value.
type Header struct {
	Key   string
	Value []byte
}

// Record is one record. For an input record every field is set by the host;
// Key, Value and the header values point into a buffer reused for the next
// batch (see the package documentation). For a written record Offset,
// Partition and Topic are ignored (use [ToTopic] and [ToPartition]), and a
// zero Timestamp means the input record's timestamp.
type Record struct {
	Key       []byte // nil when the record has no key
	Value     []byte // nil for a null value (a tombstone)
	Headers   []Header
	Timestamp int64 // milliseconds since the Unix epoch
	Offset    int64
	Partition int32
	Topic     string
}

// Time is the record's timestamp as a time.Time.
func (r Record) Time() time.Time { return time.UnixMilli(r.Timestamp) }

// Header returns the value of the first header named key.
func (r Record) Header(key string) (value []byte, ok bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// Writer receives a handler's output records for the current input record.
type Writer interface {
	// Write emits rec to the default output topic (the first one the
	// manifest declares) unless ToTopic says otherwise. Writing to a topic
	// the manifest does not declare fails the input record on the host.
	Write(rec Record, opts ...WriteOption) error
}

// WriteOption directs one written record.
type WriteOption struct {
	topic     string
	partition int32
	set       uint8
}

const (
	setTopic uint8 = 1 << iota
	setPartition
)

// ToTopic writes the record to the named output topic, which must be one of
// the function's declared outputs.
func ToTopic(name string) WriteOption { return WriteOption{topic: name, set: setTopic} }

// ToPartition writes the record to partition p of its topic instead of
// letting the host choose (murmur2 of the key, or the input partition for
// a record without a key).
func ToPartition(p int32) WriteOption { return WriteOption{partition: p, set: setPartition} }

// Env returns the value of an environment variable declared in the
// function's manifest ("" when unset).
func Env(key string) string { return os.Getenv(key) }

// LookupEnv is like Env and also reports whether the variable is set.
func LookupEnv(key string) (string, bool) { return os.LookupEnv(key) }

// Logf writes one line to the function's log (stderr).
func Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
