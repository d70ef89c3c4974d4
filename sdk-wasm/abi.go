package wisp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ABIVersion is the version of the wisp function ABI this SDK implements
// (docs/abi.md). The module exports it as wisp_abi_version.
const ABIVersion = 1

// Output flags and result kinds of ABI version 1.
const (
	flagForward = 1 << 0 // the output is the input record itself

	resultOK    = 0
	resultError = 1

	statusOK    = 0
	statusError = 1
)

var le = binary.LittleEndian

var errMalformed = errors.New("wisp: malformed input batch")

// batchWriter encodes the results of one batch. It is the Writer handlers
// get inside the module; one exists per module and is reused.
type batchWriter struct {
	out  []byte
	inTS int64  // the input record's timestamp, for outputs without one
	n    uint32 // outputs written for the input record so far
}

func (w *batchWriter) Write(rec Record, opts ...WriteOption) error {
	topic, partition := "", int32(-1)
	for _, o := range opts {
		if o.set&setTopic != 0 {
			topic = o.topic
		}
		if o.set&setPartition != 0 {
			partition = o.partition
		}
	}
	ts := rec.Timestamp
	if ts == 0 {
		ts = w.inTS
	}
	// Size everything first and grow once: a Write is on the per-record
	// path, where each append's capacity check and call adds up.
	size := 1 + 4 + len(topic) + 4 + 8 + 4 + len(rec.Key) + 4 + len(rec.Value) + 4
	for _, h := range rec.Headers {
		size += 8 + len(h.Key) + len(h.Value)
	}
	b := grow(w.out, size)
	o := len(w.out)
	b[o] = 0
	o = putString(b, o+1, topic)
	put32(b, o, uint32(partition))
	put64(b, o+4, uint64(ts))
	o = putBytes(b, o+12, rec.Key)
	o = putBytes(b, o, rec.Value)
	put32(b, o, uint32(len(rec.Headers)))
	o += 4
	for _, h := range rec.Headers {
		o = putString(b, o, h.Key)
		o = putBytes(b, o, h.Value)
	}
	w.out = b[:o]
	w.n++
	return nil
}

// forward writes the input record unchanged to topic ("" = default).
func (w *batchWriter) forward(topic string) {
	b := grow(w.out, 9+len(topic))
	o := len(w.out)
	b[o] = flagForward
	o = putString(b, o+1, topic)
	put32(b, o, 0xffffffff)
	w.out = b[:o+4]
	w.n++
}

// grow returns b extended to len(b)+n bytes, reallocating at most once.
func grow(b []byte, n int) []byte {
	if len(b)+n <= cap(b) {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}

func putString(b []byte, o int, s string) int {
	put32(b, o, uint32(len(s)))
	if len(s) == 0 { // copy is a runtime call even for nothing
		return o + 4
	}
	return o + 4 + copy(b[o+4:], s)
}

func putBytes(b []byte, o int, v []byte) int {
	if v == nil {
		put32(b, o, 0xffffffff)
		return o + 4
	}
	put32(b, o, uint32(len(v)))
	if len(v) == 0 {
		return o + 4
	}
	return o + 4 + copy(b[o+4:], v)
}

func appendString(b []byte, s string) []byte {
	b = le.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	if v == nil {
		return le.AppendUint32(b, 0xffffffff)
	}
	b = le.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// decoder reads the input encoding; any read past the end sets bad.
type decoder struct {
	b   []byte
	off int
	bad bool
}

func (d *decoder) u32() uint32 {
	if d.off+4 > len(d.b) {
		d.bad = true
		return 0
	}
	v := le.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *decoder) u64() uint64 {
	if d.off+8 > len(d.b) {
		d.bad = true
		return 0
	}
	v := le.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

// bytes reads a length-prefixed field; 0xffffffff is null.
func (d *decoder) bytes() []byte {
	n := d.u32()
	if n == 0xffffffff || d.bad {
		return nil
	}
	if uint64(d.off)+uint64(n) > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	v := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return v
}

// batchState is reused across batches so that a steady stream of batches
// allocates nothing per record (header keys aside).
type batchState struct {
	topic   string
	headers []Header

	// Per batch: the input, the next record's position, and the start of
	// the current record's result in the output (for rewinding on error).
	in          []byte
	off         int
	resultStart int
	malformed   bool
}

// processBatch runs the registered handler over one encoded input batch and
// returns the encoded output, which aliases w.out until the next call.
func processBatch(reg *registration, w *batchWriter, st *batchState, in []byte) []byte {
	w.out = w.out[:0]
	if reg.empty() {
		return batchError(w, errNoHandler.Error())
	}
	d := decoder{b: in}
	version := d.u32()
	_ = d.u32() // flags, none defined in version 1
	count := d.u32()
	partition := int32(d.u32())
	topic := d.bytes()
	if d.bad || version != ABIVersion || uint64(count)*32 > uint64(len(in)) { // a record takes >= 32 bytes
		return batchError(w, errMalformed.Error())
	}
	if string(topic) != st.topic { // no allocation when unchanged
		st.topic = string(topic)
	}
	w.out = le.AppendUint32(w.out, ABIVersion)
	w.out = le.AppendUint32(w.out, statusOK)
	w.out = le.AppendUint32(w.out, count)
	st.in, st.off, st.malformed = in, d.off, false
	for i := uint32(0); i < count; {
		i = st.run(reg, w, partition, i, count)
	}
	st.in = nil
	if st.malformed {
		return batchError(w, errMalformed.Error())
	}
	return w.out
}

// run processes records i..count-1 and returns count, or, when the handler
// panics, records the panic as record i's error and returns i+1 so that
// the caller resumes with the next record. One deferred recover per run
// instead of one per record: a defer costs tens of nanoseconds in wasm.
func (st *batchState) run(reg *registration, w *batchWriter, partition int32, i, count uint32) (next uint32) {
	defer func() {
		if p := recover(); p != nil {
			w.out = append(w.out[:st.resultStart], resultError)
			w.out = appendString(w.out, fmt.Sprintf("panic: %v", p))
			next = i + 1
		}
	}()
	var rec Record // kept from escaping: heap writes cost write barriers
	rec.Partition, rec.Topic = partition, st.topic
	in := st.in
	for ; i < count; i++ {
		// Fixed part: size, offset, timestamp, key length.
		o := st.off
		if o+24 > len(in) {
			st.malformed = true
			return count
		}
		size := get32(in, o)
		end := o + 4 + int(size)
		if size < 28 || size > uint32(len(in)) || end > len(in) {
			st.malformed = true
			return count
		}
		r := in[o+4 : end]
		rec.Offset = int64(get64(r, 0))
		rec.Timestamp = int64(get64(r, 8))
		p := 16
		var ok bool
		if rec.Key, p, ok = field(r, p); ok {
			rec.Value, p, ok = field(r, p)
		}
		if !ok || p+4 > len(r) {
			st.malformed = true
			return count
		}
		nh := get32(r, p)
		p += 4
		rec.Headers = nil
		if nh > 0 {
			hs := st.headers[:0]
			for j := uint32(0); j < nh && ok; j++ {
				var k, v []byte
				if k, p, ok = field(r, p); ok {
					v, p, ok = field(r, p)
				}
				hs = append(hs, Header{Key: string(k), Value: v})
			}
			st.headers = hs
			rec.Headers = hs[:len(hs):len(hs)]
		}
		if !ok || p != len(r) {
			st.malformed = true
			return count
		}
		st.off = end

		st.resultStart = len(w.out)
		w.out = append(w.out, resultOK, 0, 0, 0, 0)
		w.n, w.inTS = 0, rec.Timestamp
		var err error
		switch {
		case reg.filter != nil:
			if reg.filter(rec) {
				w.forward("")
			}
		case reg.route != nil:
			if topic := reg.route(rec); topic != "" {
				w.forward(topic)
			}
		case reg.mapper != nil:
			var m Record
			if m, err = reg.mapper(rec); err == nil {
				err = w.Write(m)
			}
		default:
			err = reg.process(rec, w)
		}
		if err != nil {
			w.out = append(w.out[:st.resultStart], resultError)
			w.out = appendString(w.out, err.Error())
			continue
		}
		put32(w.out, st.resultStart+1, w.n)
	}
	return count
}

// field reads a length-prefixed byte string at r[p:]; 0xffffffff is null.
func field(r []byte, p int) ([]byte, int, bool) {
	if p+4 > len(r) {
		return nil, p, false
	}
	n := get32(r, p)
	p += 4
	if n == 0xffffffff {
		return nil, p, true
	}
	if uint64(n) > uint64(len(r)-p) {
		return nil, p, false
	}
	return r[p : p+int(n) : p+int(n)], p + int(n), true
}

func batchError(w *batchWriter, msg string) []byte {
	w.out = le.AppendUint32(w.out[:0], ABIVersion)
	w.out = le.AppendUint32(w.out, statusError)
	w.out = appendString(w.out, msg)
	return w.out
}
