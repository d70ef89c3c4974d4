package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wispbus/wisp/client"
)

func TestRecordFormat(t *testing.T) {
	rec := &client.Record{Topic: "orders", Partition: 2, Offset: 41, Key: []byte("k1"), Value: []byte("hello"),
		Timestamp: time.UnixMilli(1700000000123),
		Headers:   []client.Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}}
	for _, c := range []struct {
		format, want string
	}{
		{`%v\n`, "hello\n"},
		{`%k=%v %p\n`, "k1=hello 2\n"},
		{`%T/%p@%o\t%t`, "orders/2@41\t1700000000123"},
		{`[%h]`, "[a=1,b=2]"},
		{`100%% %v\\n`, `100% hello\n`},
		{`\r\n`, "\r\n"},
		{``, ""},
		{`plain`, "plain"},
	} {
		t.Run(c.format, func(t *testing.T) {
			f, err := parseRecordFormat(c.format)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(f.append(nil, rec)); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestRecordFormatNullsAndNoHeaders(t *testing.T) {
	f, err := parseRecordFormat(`[%k][%v][%h]`)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(f.append(nil, &client.Record{})); got != "[][][]" {
		t.Fatalf("got %q", got)
	}
}

func TestRecordFormatErrors(t *testing.T) {
	for _, bad := range []string{`%`, `%x`, `abc\`, `\q`, `%v %`} {
		if _, err := parseRecordFormat(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseOffset(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want offsetSpec
	}{
		{"start", offsetSpec{kind: offsetFromStart}},
		{"beginning", offsetSpec{kind: offsetFromStart}},
		{"earliest", offsetSpec{kind: offsetFromStart}},
		{"END", offsetSpec{kind: offsetFromEnd}},
		{"latest", offsetSpec{kind: offsetFromEnd}},
		{"0", offsetSpec{kind: offsetExact, n: 0}},
		{"42", offsetSpec{kind: offsetExact, n: 42}},
		{"-10", offsetSpec{kind: offsetBeforeEnd, n: 10}},
		{"@2024-05-01T12:00:00Z", offsetSpec{kind: offsetAtTime, at: at}},
		{"@2024-05-01T14:00:00+02:00", offsetSpec{kind: offsetAtTime, at: at}},
		{"@1714564800000", offsetSpec{kind: offsetAtTime, at: at}},
	} {
		t.Run(c.in, func(t *testing.T) {
			got, err := parseOffset(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.kind != c.want.kind || got.n != c.want.n || !got.at.Equal(c.want.at) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
	for _, bad := range []string{"", "first", "@", "@yesterday", "1.5", "--3"} {
		if _, err := parseOffset(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestOffsetSpecClientOffset(t *testing.T) {
	for _, c := range []struct {
		in, want string
	}{
		{"start", "start"}, {"end", "end"}, {"7", "7"}, {"-3", "end"},
		{"@2024-05-01T12:00:00Z", "time:2024-05-01T12:00:00Z"},
	} {
		o, err := parseOffset(c.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.clientOffset().String(); got != c.want {
			t.Errorf("%s: got %s, want %s", c.in, got, c.want)
		}
	}
}

func TestJSONRecord(t *testing.T) {
	rec := &client.Record{Topic: "t", Partition: 1, Offset: 9, Key: nil, Value: []byte{0xff, 0x00},
		Timestamp: time.Date(2024, 5, 1, 12, 0, 0, 500, time.UTC),
		Headers:   []client.Header{{Key: "h", Value: []byte("v")}, {Key: "n", Value: nil}}}
	line := appendJSONRecord(nil, rec)
	if !strings.HasSuffix(string(line), "}\n") || strings.Count(string(line), "\n") != 1 {
		t.Fatalf("not one line: %q", line)
	}
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"topic": "t", "partition": 1.0, "offset": 9.0, "timestamp": "2024-05-01T12:00:00.0000005Z",
		"key": nil, "value": "/wA=", "value_format": "binary",
		"headers": []any{map[string]any{"key": "h", "value": "v"}, map[string]any{"key": "n", "value": nil}},
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Fatalf("got  %s\nwant %s", gb, wb)
	}
}

func TestJSONRecordNoHTMLEscapes(t *testing.T) {
	line := string(appendJSONRecord(nil, &client.Record{Value: []byte("<a&b>")}))
	if !strings.Contains(line, `"value":"<a&b>"`) {
		t.Fatalf("%s", line)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 3 << 20: "3.0 MiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("%d: got %q, want %q", n, got, want)
		}
	}
}
