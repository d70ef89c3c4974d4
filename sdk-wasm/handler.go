package wisp

import (
	"errors"
	"fmt"
)

// Handler processes one input record, writing zero or more records to out.
// Returning an error (or panicking) fails this record only: the host
// dead-letters it and discards what the handler wrote for it.
type Handler func(rec Record, out Writer) error

// registration is the module's handler. Filter, Map and Route are kept
// apart from Process so that the batch loop calls them directly: inside
// WebAssembly every call layer costs several nanoseconds per record.
type registration struct {
	process Handler
	filter  func(Record) bool
	mapper  func(Record) (Record, error)
	route   func(Record) string
}

var registered registration

func (r *registration) empty() bool {
	return r.process == nil && r.filter == nil && r.mapper == nil && r.route == nil
}

func register(r registration, ok bool) {
	if !ok {
		panic("wisp: registering a nil handler")
	}
	if !registered.empty() {
		panic("wisp: a handler is already registered (call Process, Filter, Map or Route once)")
	}
	registered = r
}

// Process registers h as the module's handler. Call it (or Filter, Map,
// Route) exactly once, from an init function.
func Process(h Handler) { register(registration{process: h}, h != nil) }

// Filter registers a handler that forwards the records for which keep
// returns true, unchanged, to the default output topic, and drops the
// others. keep must not modify the record.
func Filter(keep func(Record) bool) { register(registration{filter: keep}, keep != nil) }

// Map registers a handler that writes fn's result for each record to the
// default output topic.
func Map(fn func(Record) (Record, error)) { register(registration{mapper: fn}, fn != nil) }

// Route registers a handler that forwards each record, unchanged, to the
// output topic named by fn; "" drops the record. fn must not modify the
// record.
func Route(fn func(Record) string) { register(registration{route: fn}, fn != nil) }

// FilterHandler is the Handler that Filter registers, for composing
// handlers or testing them with Run.
func FilterHandler(keep func(Record) bool) Handler {
	return func(rec Record, out Writer) error {
		if !keep(rec) {
			return nil
		}
		if w, ok := out.(*batchWriter); ok {
			w.forward("")
			return nil
		}
		return out.Write(rec)
	}
}

// MapHandler is the Handler that Map registers.
func MapHandler(fn func(Record) (Record, error)) Handler {
	return func(rec Record, out Writer) error {
		r, err := fn(rec)
		if err != nil {
			return err
		}
		return out.Write(r)
	}
}

// RouteHandler is the Handler that Route registers.
func RouteHandler(fn func(Record) string) Handler {
	return func(rec Record, out Writer) error {
		topic := fn(rec)
		if topic == "" {
			return nil
		}
		if w, ok := out.(*batchWriter); ok {
			w.forward(topic)
			return nil
		}
		return out.Write(rec, ToTopic(topic))
	}
}

// Written is a record that a handler wrote, as Run reports it.
type Written struct {
	Record    Record
	Topic     string // "" for the default output topic
	Partition int32  // -1 when the host chooses
}

// Run calls h on rec outside of WebAssembly and returns what it wrote, so
// that handlers can be unit-tested with go test. A panic in h is returned
// as an error, as the module would report it.
func Run(h Handler, rec Record) (out []Written, err error) {
	c := &collector{in: rec}
	err = callHandler(h, rec, c)
	return c.out, err
}

type collector struct {
	in  Record
	out []Written
}

func (c *collector) Write(rec Record, opts ...WriteOption) error {
	w := Written{Record: rec, Partition: -1}
	for _, o := range opts {
		if o.set&setTopic != 0 {
			w.Topic = o.topic
		}
		if o.set&setPartition != 0 {
			w.Partition = o.partition
		}
	}
	if w.Record.Timestamp == 0 {
		w.Record.Timestamp = c.in.Timestamp
	}
	w.Record.Offset, w.Record.Partition, w.Record.Topic = 0, 0, ""
	c.out = append(c.out, w)
	return nil
}

// callHandler runs h, turning a panic into an error.
func callHandler(h Handler, rec Record, out Writer) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return h(rec, out)
}

var errNoHandler = errors.New("wisp: the module registered no handler: call wisp.Process, Filter, Map or Route from an init function (main is never called in a -buildmode=c-shared module)")
