package wasm

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/wispbus/wisp/internal/batch"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if rtShare != nil {
		rtShare.Close(context.Background())
	}
	os.Exit(code)
}

// docExample returns the hex blocks of the example in docs/abi.md, so that
// the document and the code cannot drift apart.
func docExample(t testing.TB) (in, out []byte) {
	t.Helper()
	doc, err := os.ReadFile("../docs/abi.md")
	if err != nil {
		t.Fatal(err)
	}
	_, example, _ := strings.Cut(string(doc), "### Example")
	blocks := regexp.MustCompile("(?s)```\n(.*?)```").FindAllStringSubmatch(example, 2)
	if len(blocks) != 2 {
		t.Fatalf("found %d hex blocks in the example of docs/abi.md", len(blocks))
	}
	dec := func(s string) []byte {
		b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return dec(blocks[0][1]), dec(blocks[1][1])
}

func TestDocumentedExample(t *testing.T) {
	wantIn, out := docExample(t)
	in := &Batch{Topic: "in", Partition: 0, Records: []batch.Record{
		{Offset: 7, Timestamp: 1000, Key: []byte("k"), Value: []byte("hi")},
	}}
	got := EncodeInput(nil, in)
	if hex.EncodeToString(got) != hex.EncodeToString(wantIn) {
		t.Fatalf("input encoding\n got %x\nwant %x", got, wantIn)
	}
	if InputSize(in) != len(got) {
		t.Fatalf("InputSize %d, encoded %d", InputSize(in), len(got))
	}
	var res Results
	if err := DecodeOutput(out, in, &res); err != nil {
		t.Fatal(err)
	}
	o := res.Records[0].Outputs
	if len(o) != 2 || !o[0].Forward || o[0].Topic != "" || string(o[0].Record.Value) != "hi" ||
		o[1].Topic != "up" || o[1].Partition != -1 || o[1].Record.Key != nil ||
		string(o[1].Record.Value) != "HI" || o[1].Record.Timestamp != 1000 {
		t.Fatalf("decoded %+v", o)
	}
}

// output builds an ABI output by hand.
type output []byte

func (o output) u8(v byte) output    { return append(o, v) }
func (o output) u32(v uint32) output { return le.AppendUint32(o, v) }
func (o output) u64(v uint64) output { return le.AppendUint64(o, v) }
func (o output) str(s string) output { return appendString(o, s) }
func newOutput(n uint32) output      { return output(nil).u32(1).u32(0).u32(n) }
func (o output) record(topic string) output {
	return o.u8(0).str(topic).u32(null).u64(5).u32(null).u32(1).u8('x').u32(0)
}

func TestDecodeOutputErrors(t *testing.T) {
	in := values("a")
	tests := []struct {
		name string
		out  []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrMalformed, "truncated"},
		{"version", output(nil).u32(2).u32(0).u32(1), ErrMalformed, "version 2"},
		{"batch error", output(nil).u32(1).u32(1).str("no handler"), ErrBatch, "no handler"},
		{"status", output(nil).u32(1).u32(7), ErrMalformed, "status 7"},
		{"count", newOutput(2), ErrMalformed, "2 results for 1 records"},
		{"kind", newOutput(1).u8(9), ErrMalformed, "result kind 9"},
		{"output count", newOutput(1).u8(0).u32(1000), ErrMalformed, "1000 outputs"},
		{"flags", newOutput(1).u8(0).u32(1).u8(0x82).str("").u32(null), ErrMalformed, "flags"},
		{"null topic", newOutput(1).u8(0).u32(1).u8(1).u32(null).u32(null), ErrMalformed, "null topic"},
		{"partition", newOutput(1).u8(0).u32(1).u8(1).str("").u32(0xfffffff0), ErrMalformed, "partition"},
		{"value past end", newOutput(1).u8(0).u32(1).u8(0).str("").u32(null).u64(0).u32(null).u32(99), ErrMalformed, "past the end"},
		{"trailing", newOutput(1).u8(0).u32(1).record("t").u8(0), ErrMalformed, "1 trailing bytes"},
		{"null error", newOutput(1).u8(1).u32(null), ErrMalformed, "null error message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res Results
			err := DecodeOutput(tt.out, in, &res)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v; want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
	var res Results
	if err := DecodeOutput(newOutput(1).u8(0).u32(2).record("a").record("a"), in, &res); err != nil {
		t.Fatal(err)
	}
	if o := res.Records[0].Outputs; len(o) != 2 || o[0].Topic != "a" || string(o[1].Record.Value) != "x" {
		t.Fatalf("%+v", o)
	}
}

func TestResultsAppend(t *testing.T) {
	var r Results
	r.Reset(3)
	for i := 0; i < 3; i++ {
		for j := 0; j <= i; j++ {
			r.Append(i, Output{Topic: string(rune('a' + i)), Partition: int32(j)})
		}
	}
	r.Fail(1, "bad")
	if len(r.Records[0].Outputs) != 1 || r.Records[1].Err != "bad" || len(r.Records[1].Outputs) != 0 ||
		len(r.Records[2].Outputs) != 3 || r.Records[2].Outputs[2].Partition != 2 || r.Records[0].Outputs[0].Topic != "a" {
		t.Fatalf("%+v", r.Records)
	}
}

func FuzzDecodeOutput(f *testing.F) {
	_, doc := docExample(f)
	f.Add(doc)
	f.Add([]byte(newOutput(1).u8(0).u32(2).record("a").record("")))
	f.Add([]byte(newOutput(1).u8(1).str("err")))
	in := values("a")
	f.Fuzz(func(t *testing.T, out []byte) {
		var res Results
		if err := DecodeOutput(out, in, &res); err == nil && len(res.Records) != 1 {
			t.Fatalf("%d results without an error", len(res.Records))
		}
	})
}
