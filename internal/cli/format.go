package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/wispbus/wisp/client"
)

// recordFormat is a compiled -f format string: literal text and verbs,
// rendered per record without reparsing.
//
//	%k key   %v value   %p partition   %o offset   %t timestamp (ms since the epoch)
//	%T topic   %h headers (k=v,k=v)   %%  a percent sign
//	\n newline   \t tab   \r carriage return   \\ backslash
type recordFormat struct {
	parts []formatPart
}

type formatPart struct {
	lit  string
	verb byte // 0 for a literal
}

// parseRecordFormat compiles a -f format string.
func parseRecordFormat(s string) (recordFormat, error) {
	var f recordFormat
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			f.parts = append(f.parts, formatPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			if i+1 == len(s) {
				return f, fmt.Errorf("format %q ends with a lone %%", s)
			}
			i++
			switch v := s[i]; v {
			case '%':
				lit.WriteByte('%')
			case 'k', 'v', 'p', 'o', 't', 'T', 'h':
				flush()
				f.parts = append(f.parts, formatPart{verb: v})
			default:
				return f, fmt.Errorf("format %q: unknown verb %%%c (want %%k %%v %%p %%o %%t %%T %%h or %%%%)", s, v)
			}
		case '\\':
			if i+1 == len(s) {
				return f, fmt.Errorf("format %q ends with a lone \\", s)
			}
			i++
			switch e := s[i]; e {
			case 'n':
				lit.WriteByte('\n')
			case 't':
				lit.WriteByte('\t')
			case 'r':
				lit.WriteByte('\r')
			case '\\':
				lit.WriteByte('\\')
			default:
				return f, fmt.Errorf("format %q: unknown escape \\%c (want \\n \\t \\r or \\\\)", s, e)
			}
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return f, nil
}

// append renders r onto buf.
func (f recordFormat) append(buf []byte, r *client.Record) []byte {
	for _, p := range f.parts {
		switch p.verb {
		case 0:
			buf = append(buf, p.lit...)
		case 'k':
			buf = append(buf, r.Key...)
		case 'v':
			buf = append(buf, r.Value...)
		case 'p':
			buf = strconv.AppendInt(buf, int64(r.Partition), 10)
		case 'o':
			buf = strconv.AppendInt(buf, r.Offset, 10)
		case 't':
			buf = strconv.AppendInt(buf, r.Timestamp.UnixMilli(), 10)
		case 'T':
			buf = append(buf, r.Topic...)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, h.Key...)
				buf = append(buf, '=')
				buf = append(buf, h.Value...)
			}
		}
	}
	return buf
}

// jsonRecord is how consume --format json prints a record: one object per
// line. Keys, values and header values that are valid UTF-8 are strings;
// others are base64 and marked "binary", as GET /v1/topics/{t}/records
// does, so the output can be posted back to the HTTP API unchanged.
type jsonRecord struct {
	Topic       string       `json:"topic"`
	Partition   int32        `json:"partition"`
	Offset      int64        `json:"offset"`
	Timestamp   string       `json:"timestamp"`
	Key         *string      `json:"key"`
	KeyFormat   string       `json:"key_format,omitempty"`
	Value       *string      `json:"value"`
	ValueFormat string       `json:"value_format,omitempty"`
	Headers     []jsonHeader `json:"headers"`
}

type jsonHeader struct {
	Key         string  `json:"key"`
	Value       *string `json:"value"`
	ValueFormat string  `json:"value_format,omitempty"`
}

// jsonBytes encodes b as a JSON string: itself when UTF-8, else base64
// with format "binary". nil stays null.
func jsonBytes(b []byte) (*string, string) {
	if b == nil {
		return nil, ""
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	s := base64.StdEncoding.EncodeToString(b)
	return &s, "binary"
}

func toJSONRecord(r *client.Record) jsonRecord {
	j := jsonRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: r.Timestamp.UTC().Format(time.RFC3339Nano), Headers: make([]jsonHeader, 0, len(r.Headers))}
	j.Key, j.KeyFormat = jsonBytes(r.Key)
	j.Value, j.ValueFormat = jsonBytes(r.Value)
	for _, h := range r.Headers {
		v, f := jsonBytes(h.Value)
		j.Headers = append(j.Headers, jsonHeader{Key: h.Key, Value: v, ValueFormat: f})
	}
	return j
}

// appendJSONRecord renders r as one JSON line onto buf. HTML characters
// (<, >, &) are left as they are: this is for terminals and pipes.
func appendJSONRecord(buf []byte, r *client.Record) []byte {
	b := bytes.NewBuffer(buf)
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(toJSONRecord(r)); err != nil { // cannot happen: strings and numbers only
		panic(err)
	}
	return b.Bytes()
}

// offsetSpec is a parsed -o: where consumption starts.
type offsetSpec struct {
	kind offsetKind
	n    int64     // exact offset, or how many records before the end
	at   time.Time // offsetAtTime
}

type offsetKind int8

const (
	offsetFromStart offsetKind = iota
	offsetFromEnd
	offsetExact
	offsetAtTime
	offsetBeforeEnd // -N: the last N records of each partition
)

// parseOffset parses -o: start (beginning, earliest, oldest), end (latest,
// newest), an offset N, -N (the last N records of each partition), or
// @TIME, TIME being RFC 3339 or milliseconds since the epoch.
func parseOffset(s string) (offsetSpec, error) {
	switch strings.ToLower(s) {
	case "start", "beginning", "earliest", "oldest":
		return offsetSpec{kind: offsetFromStart}, nil
	case "end", "latest", "newest":
		return offsetSpec{kind: offsetFromEnd}, nil
	}
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		if ms, err := strconv.ParseInt(rest, 10, 64); err == nil {
			return offsetSpec{kind: offsetAtTime, at: time.UnixMilli(ms)}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, rest)
		if err != nil {
			return offsetSpec{}, fmt.Errorf("offset %q: want @RFC3339 time (e.g. @2024-05-01T12:00:00Z) or @milliseconds", s)
		}
		return offsetSpec{kind: offsetAtTime, at: t}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil:
		return offsetSpec{}, fmt.Errorf("offset %q: want start, end, an offset N, -N (last N records) or @TIME", s)
	case n < 0:
		return offsetSpec{kind: offsetBeforeEnd, n: -n}, nil
	}
	return offsetSpec{kind: offsetExact, n: n}, nil
}

// clientOffset is the consumer start offset for spec; -N starts at the end
// and is adjusted per partition once the partitions are known.
func (o offsetSpec) clientOffset() client.Offset {
	switch o.kind {
	case offsetFromEnd, offsetBeforeEnd:
		return client.AtEnd()
	case offsetExact:
		return client.At(o.n)
	case offsetAtTime:
		return client.AtTime(o.at)
	}
	return client.AtStart()
}

// newTable returns a tabwriter for aligned text output.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// humanBytes formats a size with a binary unit: 0 B, 1.5 KiB, 3.0 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// joinInt32s formats partition or node lists: 1,2,3.
func joinInt32s(xs []int32) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(x)))
	}
	return b.String()
}
