package wisp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// encodeInput builds an ABI v1 input batch (docs/abi.md) the way a host does.
func encodeInput(topic string, partition int32, recs []Record) []byte {
	b := binary.LittleEndian.AppendUint32(nil, ABIVersion)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(recs)))
	b = binary.LittleEndian.AppendUint32(b, uint32(partition))
	b = appendString(b, topic)
	for _, r := range recs {
		var body []byte
		body = binary.LittleEndian.AppendUint64(body, uint64(r.Offset))
		body = binary.LittleEndian.AppendUint64(body, uint64(r.Timestamp))
		body = appendBytes(body, r.Key)
		body = appendBytes(body, r.Value)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(r.Headers)))
		for _, h := range r.Headers {
			body = appendString(body, h.Key)
			body = appendBytes(body, h.Value)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
		b = append(b, body...)
	}
	return b
}

type result struct {
	err     string
	outputs []Written
	forward []bool
}

// decodeOutput parses an ABI v1 output; forwarded records are resolved
// against in.
func decodeOutput(t *testing.T, out []byte, in []Record) (batchErr string, res []result) {
	t.Helper()
	d := decoder{b: out}
	if v := d.u32(); v != ABIVersion {
		t.Fatalf("output version %d", v)
	}
	if d.u32() == statusError {
		return string(d.bytes()), nil
	}
	n := d.u32()
	if int(n) != len(in) {
		t.Fatalf("%d results for %d records", n, len(in))
	}
	for i := 0; i < int(n); i++ {
		var r result
		kind := d.b[d.off]
		d.off++
		if kind == resultError {
			r.err = string(d.bytes())
			res = append(res, r)
			continue
		}
		count := d.u32()
		for j := uint32(0); j < count; j++ {
			flags := d.b[d.off]
			d.off++
			w := Written{Topic: string(d.bytes()), Partition: int32(d.u32())}
			if flags&flagForward != 0 {
				w.Record = in[i]
			} else {
				w.Record.Timestamp = int64(d.u64())
				w.Record.Key = d.bytes()
				w.Record.Value = d.bytes()
				for nh := d.u32(); nh > 0; nh-- {
					w.Record.Headers = append(w.Record.Headers, Header{Key: string(d.bytes()), Value: d.bytes()})
				}
			}
			r.outputs = append(r.outputs, w)
			r.forward = append(r.forward, flags&flagForward != 0)
		}
		res = append(res, r)
	}
	if d.bad || d.off != len(out) {
		t.Fatalf("malformed output: bad=%v, %d of %d bytes read", d.bad, d.off, len(out))
	}
	return "", res
}

func run(t *testing.T, reg registration, in []Record) (string, []result) {
	t.Helper()
	var w batchWriter
	var st batchState
	out := processBatch(&reg, &w, &st, encodeInput("in", 3, in))
	return decodeOutput(t, out, in)
}

func TestProcessBatch(t *testing.T) {
	in := []Record{
		{Offset: 10, Timestamp: 1000, Key: []byte("k1"), Value: []byte("hello world"),
			Headers: []Header{{Key: "h", Value: []byte("v")}, {Key: "null"}}},
		{Offset: 11, Timestamp: 1001, Value: []byte("fail")},
		{Offset: 12, Timestamp: 1002, Key: []byte{}, Value: nil},
		{Offset: 13, Timestamp: 1003, Value: []byte("panic")},
	}
	h := func(r Record, out Writer) error {
		if r.Topic != "in" || r.Partition != 3 {
			t.Errorf("record topic %q partition %d", r.Topic, r.Partition)
		}
		switch string(r.Value) {
		case "fail":
			_ = out.Write(Record{Value: []byte("discarded")})
			return errors.New("no thanks")
		case "panic":
			panic("kaboom")
		}
		for _, w := range bytes.Fields(r.Value) {
			_ = out.Write(Record{Key: w, Value: r.Value, Headers: r.Headers}, ToTopic("words"), ToPartition(7))
		}
		return out.Write(r)
	}
	batchErr, res := run(t, registration{process: h}, in)
	if batchErr != "" {
		t.Fatal(batchErr)
	}
	if len(res[0].outputs) != 3 || res[0].outputs[0].Topic != "words" || res[0].outputs[0].Partition != 7 ||
		string(res[0].outputs[1].Record.Key) != "world" || res[0].outputs[1].Record.Timestamp != 1000 ||
		len(res[0].outputs[1].Record.Headers) != 2 || res[0].outputs[1].Record.Headers[1].Value != nil {
		t.Errorf("record 0: %+v", res[0])
	}
	last := res[0].outputs[2]
	if last.Topic != "" || last.Partition != -1 || string(last.Record.Value) != "hello world" || res[0].forward[2] {
		t.Errorf("record 0 echo: %+v", last)
	}
	if res[1].err != "no thanks" || len(res[1].outputs) != 0 {
		t.Errorf("record 1: %+v", res[1])
	}
	if o := res[2].outputs; len(o) != 1 || o[0].Record.Key == nil || len(o[0].Record.Key) != 0 || o[0].Record.Value != nil {
		t.Errorf("record 2 (empty key, null value): %+v", res[2])
	}
	if !strings.HasPrefix(res[3].err, "panic: ") {
		t.Errorf("record 3: %+v", res[3])
	}
}

func TestForward(t *testing.T) {
	in := []Record{{Offset: 1, Value: []byte(`{"type":"click"}`)}, {Offset: 2, Value: []byte(`{"type":"view"}`)}, {Offset: 3, Value: []byte(`x`)}}
	route := func(r Record) string {
		switch {
		case bytes.Contains(r.Value, []byte("click")):
			return "clicks"
		case bytes.Contains(r.Value, []byte("view")):
			return "views"
		}
		return ""
	}
	keep := func(r Record) bool { return r.Offset != 2 }
	for name, reg := range map[string]registration{"route": {route: route}, "route handler": {process: RouteHandler(route)}} {
		_, res := run(t, reg, in)
		if len(res[0].outputs) != 1 || !res[0].forward[0] || res[0].outputs[0].Topic != "clicks" ||
			res[1].outputs[0].Topic != "views" || len(res[2].outputs) != 0 {
			t.Errorf("%s: %+v", name, res)
		}
	}
	for name, reg := range map[string]registration{"filter": {filter: keep}, "filter handler": {process: FilterHandler(keep)}} {
		_, res := run(t, reg, in)
		if len(res[0].outputs) != 1 || !res[0].forward[0] || len(res[1].outputs) != 0 || len(res[2].outputs) != 1 {
			t.Errorf("%s: %+v", name, res)
		}
	}
	upper := func(r Record) (Record, error) {
		if r.Offset == 3 {
			return r, errors.New("no")
		}
		r.Value = bytes.ToUpper(r.Value)
		return r, nil
	}
	_, res := run(t, registration{mapper: upper}, in)
	if len(res[0].outputs) != 1 || res[0].forward[0] || string(res[0].outputs[0].Record.Value) != `{"TYPE":"CLICK"}` || res[2].err != "no" {
		t.Errorf("map: %+v", res)
	}
}

func TestBatchErrors(t *testing.T) {
	var w batchWriter
	var st batchState
	for name, in := range map[string][]byte{
		"empty":       nil,
		"version":     encodeInput("t", 0, nil)[4:],
		"truncated":   encodeInput("t", 0, []Record{{Value: []byte("abc")}})[:40],
		"count":       append(encodeInput("t", 0, nil)[:8], 0xff, 0xff, 0xff, 0x0f),
		"record size": func() []byte { b := encodeInput("t", 0, []Record{{}}); b[22] = 0x7f; return b }(),
	} {
		out := processBatch(&registration{process: func(Record, Writer) error { return nil }}, &w, &st, in)
		d := decoder{b: out}
		if d.u32() != ABIVersion || d.u32() != statusError || !strings.Contains(string(d.bytes()), "malformed") {
			t.Errorf("%s: output %q", name, out)
		}
	}
	out := processBatch(&registration{}, &w, &st, encodeInput("t", 0, nil))
	d := decoder{b: out}
	if d.u32() != ABIVersion || d.u32() != statusError || !strings.Contains(string(d.bytes()), "no handler") {
		t.Errorf("no handler: output %q", out)
	}
}

func TestRun(t *testing.T) {
	h := MapHandler(func(r Record) (Record, error) {
		r.Value = bytes.ToUpper(r.Value)
		return r, nil
	})
	out, err := Run(h, Record{Value: []byte("abc"), Timestamp: 5, Offset: 9, Topic: "t"})
	if err != nil || len(out) != 1 || string(out[0].Record.Value) != "ABC" || out[0].Record.Timestamp != 5 || out[0].Partition != -1 {
		t.Fatalf("Run = %+v, %v", out, err)
	}
	_, err = Run(func(Record, Writer) error { panic("boom") }, Record{})
	if err == nil || err.Error() != "panic: boom" {
		t.Fatalf("Run(panic) = %v", err)
	}
}

func FuzzProcessBatch(f *testing.F) {
	f.Add(encodeInput("topic", 1, []Record{{Offset: 1, Key: []byte("k"), Value: []byte("v"), Headers: []Header{{Key: "a"}}}}))
	f.Add(encodeInput("", 0, nil))
	var w batchWriter
	var st batchState
	f.Fuzz(func(t *testing.T, in []byte) {
		_ = processBatch(&registration{process: func(r Record, out Writer) error { return out.Write(r) }}, &w, &st, in)
	})
}

func BenchmarkProcessBatch(b *testing.B) {
	recs := make([]Record, 1000)
	for i := range recs {
		recs[i] = Record{Offset: int64(i), Timestamp: 1, Key: []byte("key-00001"), Value: bytes.Repeat([]byte("x"), 100)}
	}
	in := encodeInput("in", 0, recs)
	var w batchWriter
	var st batchState
	reg := registration{mapper: func(r Record) (Record, error) { return r, nil }}
	b.ReportAllocs()
	for b.Loop() {
		processBatch(&reg, &w, &st, in)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}
