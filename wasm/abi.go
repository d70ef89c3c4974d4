package wasm

import (
	"encoding/binary"
	"fmt"

	"github.com/wispbus/wisp/internal/batch"
)

// ABIVersion is the guest ABI version this host speaks (docs/abi.md).
const ABIVersion = 1

const (
	statusOK    = 0
	statusError = 1

	resultOK    = 0
	resultError = 1

	flagForward = 1 << 0

	null = 0xffffffff

	inputHeaderSize = 20 // version, flags, count, partition, topic length
	minRecordSize   = 32
)

var le = binary.LittleEndian

// Batch is the input of one call: records of one topic partition, in
// offset order.
type Batch struct {
	Topic     string
	Partition int32
	Records   []batch.Record
}

// Output is one record a function wrote.
type Output struct {
	// Topic is the output topic; "" means the function's first declared
	// output. It is not checked here: the caller knows the declared set.
	Topic string
	// Partition is the partition asked for, or -1 to let the host choose.
	Partition int32
	// Forward is set when the module passed the input record through
	// unchanged; Record then shares the input record's bytes.
	Forward bool
	// Record is the output record; its Offset is unused. Its byte slices
	// alias the Results' buffer (or the input, when Forward).
	Record batch.Record
}

// Result is the outcome of one input record: an error, or outputs.
type Result struct {
	Err     string // non-empty: the function failed this record
	Outputs []Output
}

// Results holds the outcome of a batch, one Result per input record. A
// Results is reused from batch to batch to avoid allocating; what it holds
// is valid until the next call that fills it.
type Results struct {
	Records []Result

	outputs []Output
	headers []batch.RecordHeader
	buf     []byte
	topics  map[string]string // interned topic names
}

// Reset empties r for a batch of n records.
func (r *Results) Reset(n int) {
	if cap(r.Records) < n {
		r.Records = make([]Result, n)
	}
	r.Records = r.Records[:n]
	clear(r.Records)
	r.outputs = r.outputs[:0]
	r.headers = r.headers[:0]
}

// Fail marks record i as failed with msg, dropping its outputs.
func (r *Results) Fail(i int, msg string) {
	r.Records[i] = Result{Err: msg}
}

// Append adds an output to record i. Outputs must be appended record by
// record, in input order (as the ABI delivers them).
func (r *Results) Append(i int, o Output) {
	res := &r.Records[i]
	start := len(r.outputs) - len(res.Outputs)
	r.outputs = append(r.outputs, o)
	res.Outputs = r.outputs[start:len(r.outputs):len(r.outputs)]
}

func (r *Results) topic(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := r.topics[string(b)]; ok { // no allocation for the lookup
		return s
	}
	if r.topics == nil || len(r.topics) > 64 {
		r.topics = map[string]string{}
	}
	s := string(b)
	r.topics[s] = s
	return s
}

// InputSize is the size of b's input encoding.
func InputSize(b *Batch) int {
	n := inputHeaderSize + len(b.Topic)
	for i := range b.Records {
		n += 4 + recordSize(&b.Records[i])
	}
	return n
}

func recordSize(r *batch.Record) int {
	n := 8 + 8 + 4 + len(r.Key) + 4 + len(r.Value) + 4
	for _, h := range r.Headers {
		n += 4 + len(h.Key) + 4 + len(h.Value)
	}
	return n
}

// EncodeInput appends b's ABI input encoding to dst.
func EncodeInput(dst []byte, b *Batch) []byte {
	dst = le.AppendUint32(dst, ABIVersion)
	dst = le.AppendUint32(dst, 0)
	dst = le.AppendUint32(dst, uint32(len(b.Records)))
	dst = le.AppendUint32(dst, uint32(b.Partition))
	dst = appendString(dst, b.Topic)
	for i := range b.Records {
		r := &b.Records[i]
		dst = le.AppendUint32(dst, uint32(recordSize(r)))
		dst = le.AppendUint64(dst, uint64(r.Offset))
		dst = le.AppendUint64(dst, uint64(r.Timestamp))
		dst = appendBytes(dst, r.Key)
		dst = appendBytes(dst, r.Value)
		dst = le.AppendUint32(dst, uint32(len(r.Headers)))
		for _, h := range r.Headers {
			dst = appendString(dst, h.Key)
			dst = appendBytes(dst, h.Value)
		}
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = le.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return le.AppendUint32(dst, null)
	}
	dst = le.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

// reader decodes the output encoding; the first read past the end sets err.
type reader struct {
	b   []byte
	off int
	err error
}

func (d *reader) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at byte %d: %s", ErrMalformed, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *reader) u8() byte {
	if d.err != nil || d.off+1 > len(d.b) {
		d.fail("truncated")
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *reader) u32() uint32 {
	if d.err != nil || d.off+4 > len(d.b) {
		d.fail("truncated")
		return 0
	}
	v := le.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *reader) u64() uint64 {
	if d.err != nil || d.off+8 > len(d.b) {
		d.fail("truncated")
		return 0
	}
	v := le.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

func (d *reader) bytes(what string, nullable bool) []byte {
	n := d.u32()
	if d.err != nil {
		return nil
	}
	if n == null {
		if !nullable {
			d.fail("null %s", what)
		}
		return nil
	}
	if uint64(d.off)+uint64(n) > uint64(len(d.b)) {
		d.fail("%s of %d bytes past the end", what, n)
		return nil
	}
	v := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return v
}

// DecodeOutput decodes a module's output for the input batch in into r.
// Byte slices in r alias out (and in's records, for forwarded outputs). A
// batch failure reported by the module (status 1) is returned as ErrBatch;
// any deviation from the ABI as ErrMalformed.
func DecodeOutput(out []byte, in *Batch, r *Results) error {
	d := reader{b: out}
	if v := d.u32(); d.err == nil && v != ABIVersion {
		return fmt.Errorf("%w: output version %d, want %d", ErrMalformed, v, ABIVersion)
	}
	status := d.u32()
	if d.err != nil {
		return d.err
	}
	switch status {
	case statusOK:
	case statusError:
		msg := d.bytes("message", false)
		if d.err != nil {
			return d.err
		}
		return fmt.Errorf("%w: %s", ErrBatch, msg)
	default:
		return fmt.Errorf("%w: status %d", ErrMalformed, status)
	}
	n := d.u32()
	if d.err == nil && int(n) != len(in.Records) {
		return fmt.Errorf("%w: %d results for %d records", ErrMalformed, n, len(in.Records))
	}
	r.Reset(len(in.Records))
	for i := range r.Records {
		switch kind := d.u8(); kind {
		case resultOK:
		case resultError:
			msg := d.bytes("error message", false)
			if len(msg) == 0 && d.err == nil {
				msg = []byte("error")
			}
			r.Records[i].Err = string(msg)
			continue
		default:
			d.fail("result kind %d", kind)
		}
		count := d.u32()
		if d.err != nil {
			return d.err
		}
		if uint64(count)*9 > uint64(len(d.b)-d.off) {
			return fmt.Errorf("%w: %d outputs in %d bytes", ErrMalformed, count, len(d.b)-d.off)
		}
		for j := uint32(0); j < count && d.err == nil; j++ {
			flags := d.u8()
			o := Output{Topic: r.topic(d.bytes("topic", false)), Partition: int32(d.u32())}
			if flags&^flagForward != 0 {
				d.fail("output flags %#x", flags)
			}
			if o.Partition < -1 {
				d.fail("partition %d", o.Partition)
			}
			if flags&flagForward != 0 {
				o.Forward = true
				o.Record = in.Records[i]
			} else {
				o.Record.Timestamp = int64(d.u64())
				o.Record.Key = d.bytes("key", true)
				o.Record.Value = d.bytes("value", true)
				nh := d.u32()
				if uint64(nh)*8 > uint64(len(d.b)-d.off) {
					d.fail("%d headers", nh)
				}
				if nh > 0 && d.err == nil {
					start := len(r.headers)
					for k := uint32(0); k < nh && d.err == nil; k++ {
						key := d.bytes("header key", false)
						r.headers = append(r.headers, batch.RecordHeader{Key: string(key), Value: d.bytes("header value", true)})
					}
					o.Record.Headers = r.headers[start:len(r.headers):len(r.headers)]
				}
			}
			r.Append(i, o)
		}
		if d.err != nil {
			return d.err
		}
	}
	if d.err != nil {
		return d.err
	}
	if d.off != len(out) {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(out)-d.off)
	}
	return nil
}
