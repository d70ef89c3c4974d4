package httpapi

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/wispbus/wisp/internal/batch"
)

func TestDecodeProduceBody(t *testing.T) {
	str := func(s string) []byte { return []byte(s) }
	cases := []struct {
		name string
		body string
		want []batch.Record
		part []int32
	}{
		{"string value is its bytes", `{"records":[{"value":"hello"}]}`,
			[]batch.Record{{Value: str("hello")}}, []int32{-1}},
		{"escapes decoded", `{"records":[{"value":"caf\u00e9 \"q\"\n"}]}`,
			[]batch.Record{{Value: str("café \"q\"\n")}}, []int32{-1}},
		{"object is compact JSON text", `{"records":[{"key":"k","value":{ "a" : [1, true, null] }}]}`,
			[]batch.Record{{Key: str("k"), Value: str(`{"a":[1,true,null]}`)}}, []int32{-1}},
		{"number and bool", `{"records":[{"key":7,"value":false}]}`,
			[]batch.Record{{Key: str("7"), Value: str("false")}}, []int32{-1}},
		{"null and absent", `{"records":[{"key":null,"value":null},{}]}`,
			[]batch.Record{{}, {}}, []int32{-1, -1}},
		{"empty string is not null", `{"records":[{"value":""}]}`,
			[]batch.Record{{Value: []byte{}}}, []int32{-1}},
		{"binary body format", `{"value_format":"binary","key_format":"binary","records":[{"key":"AP8=","value":"aGk"}]}`,
			[]batch.Record{{Key: []byte{0, 0xff}, Value: str("hi")}}, []int32{-1}},
		{"per-record format overrides", `{"value_format":"binary","records":[{"value":"x","value_format":"json","partition":2}]}`,
			[]batch.Record{{Value: str("x")}}, []int32{2}},
		{"headers object keeps order", `{"records":[{"value":"v","headers":{"z":"1","a":null,"m":{"n":1}}}]}`,
			[]batch.Record{{Value: str("v"), Headers: []batch.RecordHeader{{Key: "z", Value: str("1")}, {Key: "a"}, {Key: "m", Value: str(`{"n":1}`)}}}}, []int32{-1}},
		{"headers array with repeats and binary", `{"records":[{"value":"v","headers":[{"key":"h","value":"a"},{"key":"h","value":"/w==","value_format":"binary"}]}]}`,
			[]batch.Record{{Value: str("v"), Headers: []batch.RecordHeader{{Key: "h", Value: str("a")}, {Key: "h", Value: []byte{0xff}}}}}, []int32{-1}},
		{"timestamp ms", `{"records":[{"value":"v","timestamp":1700000000123}]}`,
			[]batch.Record{{Value: str("v"), Timestamp: 1700000000123}}, []int32{-1}},
		{"timestamp RFC 3339", `{"records":[{"value":"v","timestamp":"2023-11-14T22:13:20.123Z"}]}`,
			[]batch.Record{{Value: str("v"), Timestamp: 1700000000123}}, []int32{-1}},
		{"GET output posts back", `{"records":[{"topic":"t","partition":0,"offset":5,"timestamp":9,"key":"AP8=","key_format":"binary","value":"v","headers":[]}]}`,
			[]batch.Record{{Key: []byte{0, 0xff}, Value: str("v"), Timestamp: 9, Headers: []batch.RecordHeader{}}}, []int32{0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeProduceBody([]byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("%d records, want %d", len(got), len(c.want))
			}
			for i, g := range got {
				w := c.want[i]
				if !sameBytes(g.rec.Key, w.Key) || !sameBytes(g.rec.Value, w.Value) || g.rec.Timestamp != w.Timestamp || g.partition != c.part[i] {
					t.Errorf("record %d = key %q value %q ts %d part %d, want %q %q %d %d", i,
						g.rec.Key, g.rec.Value, g.rec.Timestamp, g.partition, w.Key, w.Value, w.Timestamp, c.part[i])
				}
				if len(g.rec.Headers) != len(w.Headers) {
					t.Fatalf("record %d: headers %v, want %v", i, g.rec.Headers, w.Headers)
				}
				for j, h := range g.rec.Headers {
					if h.Key != w.Headers[j].Key || !sameBytes(h.Value, w.Headers[j].Value) {
						t.Errorf("record %d header %d = %q:%q, want %q:%q", i, j, h.Key, h.Value, w.Headers[j].Key, w.Headers[j].Value)
					}
				}
			}
		})
	}
}

// sameBytes compares with nil and empty kept apart (null vs "").
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func TestDecodeProduceBodyErrors(t *testing.T) {
	cases := []struct {
		name, body string
		code       int
	}{
		{"empty", ``, CodeBadJSON},
		{"syntax", `{"records":[{"value":"x"}`, CodeBadJSON},
		{"garbage", `not json`, CodeBadJSON},
		{"trailing data", `{"records":[{"value":"x"}]} {}`, CodeBadJSON},
		{"no records", `{"records":[]}`, CodeInvalidRecord},
		{"null body", `null`, CodeInvalidRecord},
		{"records not array", `{"records":{}}`, CodeInvalidRecord},
		{"misspelt field", `{"records":[{"vaule":"x"}]}`, CodeInvalidRecord},
		{"bad base64", `{"value_format":"binary","records":[{"value":"!!!"}]}`, CodeInvalidRecord},
		{"binary not string", `{"value_format":"binary","records":[{"value":12}]}`, CodeInvalidRecord},
		{"bad format", `{"value_format":"avro","records":[{"value":"x"}]}`, CodeInvalidRecord},
		{"negative partition", `{"records":[{"value":"x","partition":-1}]}`, CodeInvalidRecord},
		{"fractional partition", `{"records":[{"value":"x","partition":1.5}]}`, CodeInvalidRecord},
		{"huge partition", `{"records":[{"value":"x","partition":4294967296}]}`, CodeInvalidRecord},
		{"negative timestamp", `{"records":[{"value":"x","timestamp":-5}]}`, CodeInvalidRecord},
		{"bad timestamp string", `{"records":[{"value":"x","timestamp":"yesterday"}]}`, CodeInvalidRecord},
		{"header not string", `{"records":[{"value":"x","headers":["a"]}]}`, CodeInvalidRecord},
		{"headers wrong type", `{"records":[{"value":"x","headers":"a"}]}`, CodeInvalidRecord},
		{"second record bad", `{"records":[{"value":"ok"},{"value":"x","partition":"one"}]}`, CodeInvalidRecord},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeProduceBody([]byte(c.body))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want *Error %d", err, c.code)
			}
			if e.Code != c.code {
				t.Fatalf("code %d (%s), want %d", e.Code, e.Message, c.code)
			}
		})
	}
}

func TestDecodeV2Body(t *testing.T) {
	recs, err := decodeV2Body([]byte(`{"records":[{"key":"k","value":{"a": 1}},{"value":"s","partition":1}]}`), formatJSONText)
	if err != nil {
		t.Fatal(err)
	}
	// REST Proxy's json format keeps a string's quotes: it is JSON text.
	if string(recs[0].rec.Key) != `"k"` || string(recs[0].rec.Value) != `{"a":1}` || string(recs[1].rec.Value) != `"s"` || recs[1].partition != 1 {
		t.Fatalf("got %q %q %q %d", recs[0].rec.Key, recs[0].rec.Value, recs[1].rec.Value, recs[1].partition)
	}
	recs, err = decodeV2Body([]byte(`{"records":[{"key":"AQI=","value":"aGVsbG8="}]}`), formatBinary)
	if err != nil || !bytes.Equal(recs[0].rec.Key, []byte{1, 2}) || string(recs[0].rec.Value) != "hello" {
		t.Fatalf("binary: %v %q %q", err, recs[0].rec.Key, recs[0].rec.Value)
	}
	if _, err := decodeV2Body([]byte(`{"records":[{"value":"%%%"}]}`), formatBinary); !hasCode(err, CodeInvalidRecord) {
		t.Fatalf("bad base64: %v", err)
	}
	if _, err := decodeV2Body([]byte(`{"value_schema":"{}","records":[{"value":1}]}`), formatJSONText); !hasCode(err, CodeInvalidRecord) {
		t.Fatalf("schema: %v", err)
	}
}

func hasCode(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

func TestLineReader(t *testing.T) {
	in := "a\n\nbbbbbbbbbbbb\ncc\r\n" + strings.Repeat("x", 100) + "\nlast"
	lr := lineReader{br: bufio.NewReaderSize(strings.NewReader(in), 16), max: 20}
	type got struct {
		line    string
		tooLong bool
	}
	var out []got
	for {
		line, tooLong, err := lr.next()
		out = append(out, got{string(line), tooLong})
		if err != nil {
			break
		}
	}
	want := []got{{"a", false}, {"", false}, {"bbbbbbbbbbbb", false}, {"cc\r", false}, {"", true}, {"last", false}}
	if len(out) != len(want) {
		t.Fatalf("lines %+v, want %+v", out, want)
	}
	for i := range want {
		if out[i] != want[i] {
			t.Errorf("line %d = %+v, want %+v", i+1, out[i], want[i])
		}
	}
}

// FuzzProduceBody feeds arbitrary bytes to every body decoder: the v1 JSON
// body, NDJSON lines (through the line reader) and both REST Proxy v2
// formats. None may panic; every failure is a 4xx *Error; every success
// encodes into a batch that decodes back to the same records.
func FuzzProduceBody(f *testing.F) {
	for _, s := range []string{
		`{"records":[{"key":"k","value":"v","partition":0,"headers":{"h":"x"},"timestamp":1700000000000}]}`,
		`{"value_format":"binary","records":[{"key":"AP8=","value":"aGk=","key_format":"binary"}]}`,
		`{"records":[{"value":{"nested":[1,2,{"a":null}]},"headers":[{"key":"h","value":"/w==","value_format":"binary"}]}]}`,
		`{"records":[{"value":"x","timestamp":"2023-11-14T22:13:20Z"}]}`,
		"{\"value\":\"a\"}\n{\"key\":\"b\",\"value\":1}\n\n{bad\n",
		`{"records":[{"key":"k","value":"v"}],"key_schema":null}`,
		`{"records":[]}`,
		`null`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(what string, recs []inRecord, err error) {
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Status() < 400 || e.Status() > 499 {
					t.Fatalf("%s: error %v is not a 4xx *Error", what, err)
				}
				return
			}
			rs := make([]batch.Record, len(recs))
			for i := range recs {
				rs[i] = recs[i].rec
				if rs[i].Timestamp == 0 {
					rs[i].Timestamp = 1
				}
			}
			if len(rs) == 0 {
				return
			}
			b, err := batch.Build(batch.NoProducer, rs)
			if err != nil {
				t.Fatalf("%s: build: %v", what, err)
			}
			back, err := batch.Records(b)
			if err != nil || len(back) != len(rs) {
				t.Fatalf("%s: records: %v, %d of %d", what, err, len(back), len(rs))
			}
			for i := range rs {
				if !sameBytes(back[i].Key, rs[i].Key) || !sameBytes(back[i].Value, rs[i].Value) || len(back[i].Headers) != len(rs[i].Headers) {
					t.Fatalf("%s: record %d changed in the batch", what, i)
				}
			}
		}
		recs, err := decodeProduceBody(data)
		check("body", recs, err)
		recs, err = decodeV2Body(data, formatJSONText)
		check("v2 json", recs, err)
		recs, err = decodeV2Body(data, formatBinary)
		check("v2 binary", recs, err)
		lr := lineReader{br: bufio.NewReaderSize(bytes.NewReader(data), 16), max: 64}
		for {
			line, tooLong, err := lr.next()
			if !tooLong && len(bytes.TrimSpace(line)) > 0 {
				rec, derr := decodeRecordLine(line, formatJSON, formatBinary)
				if derr != nil {
					check("line", nil, jsonError(derr))
				} else {
					check("line", []inRecord{rec}, nil)
				}
			}
			if err != nil {
				break
			}
		}
	})
}
