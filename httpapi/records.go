package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/wispbus/wisp/internal/batch"
)

// valueFormat says how a JSON key, value or header value becomes bytes.
type valueFormat uint8

const (
	// formatJSON (wisp's default): a JSON string is stored as the string's
	// bytes, any other JSON value as its compact JSON text; null is null.
	formatJSON valueFormat = iota
	// formatBinary: a base64 string (standard alphabet, padding optional).
	formatBinary
	// formatJSONText (REST Proxy v2 json): the compact JSON text of any
	// value, strings included (with their quotes), as Confluent's
	// KafkaJsonSerializer writes it.
	formatJSONText
)

// parseFormat maps a key_format/value_format name to a valueFormat; def is
// used for "".
func parseFormat(s string, def valueFormat) (valueFormat, error) {
	switch s {
	case "":
		return def, nil
	case "json":
		return formatJSON, nil
	case "binary", "base64":
		return formatBinary, nil
	}
	return 0, fmt.Errorf("format %q (want json or binary)", s)
}

// inRecord is a decoded, validated record with the partition it asked for.
type inRecord struct {
	rec       batch.Record
	partition int32 // -1: none given, the partitioner decides
}

// produceBody is the v1 JSON produce body. Formats set here are the
// defaults for every record.
type produceBody struct {
	Records     []wireRecord `json:"records"`
	KeyFormat   string       `json:"key_format"`
	ValueFormat string       `json:"value_format"`
}

// wireRecord is one record of a v1 body or one NDJSON line.
type wireRecord struct {
	Key         json.RawMessage `json:"key"`
	Value       json.RawMessage `json:"value"`
	Partition   *int32          `json:"partition"`
	Headers     json.RawMessage `json:"headers"`
	Timestamp   json.RawMessage `json:"timestamp"`
	KeyFormat   string          `json:"key_format"`
	ValueFormat string          `json:"value_format"`
	// Topic and Offset are accepted and ignored, so that a record read
	// with GET .../records can be posted back as it is.
	Topic  json.RawMessage `json:"topic"`
	Offset json.RawMessage `json:"offset"`
}

// v2Body is a Confluent REST Proxy v2 produce body (json or binary
// embedded format). Schema fields are accepted for compatibility and must
// be null: schema formats are not supported.
type v2Body struct {
	Records       []v2Record      `json:"records"`
	KeySchema     json.RawMessage `json:"key_schema"`
	KeySchemaID   json.RawMessage `json:"key_schema_id"`
	ValueSchema   json.RawMessage `json:"value_schema"`
	ValueSchemaID json.RawMessage `json:"value_schema_id"`
}

type v2Record struct {
	Key       json.RawMessage `json:"key"`
	Value     json.RawMessage `json:"value"`
	Partition *int32          `json:"partition"`
}

// decodeProduceBody decodes and validates a whole v1 JSON body. Every
// error is an *Error: 40001 for malformed JSON, 42201 for a record that
// is not valid.
func decodeProduceBody(data []byte) ([]inRecord, error) {
	var body produceBody
	if err := decodeStrict(data, &body); err != nil {
		return nil, err
	}
	keyF, err := parseFormat(body.KeyFormat, formatJSON)
	if err != nil {
		return nil, errorf(CodeInvalidRecord, "key_format: %v", err)
	}
	valF, err := parseFormat(body.ValueFormat, formatJSON)
	if err != nil {
		return nil, errorf(CodeInvalidRecord, "value_format: %v", err)
	}
	if len(body.Records) == 0 {
		return nil, errorf(CodeInvalidRecord, `no records: want {"records":[{"value":..}, ..]}`)
	}
	out := make([]inRecord, len(body.Records))
	for i := range body.Records {
		if out[i], err = body.Records[i].toRecord(keyF, valF); err != nil {
			return nil, errorf(CodeInvalidRecord, "record %d: %v", i, err)
		}
	}
	return out, nil
}

// decodeRecordLine decodes one NDJSON line: one record object.
func decodeRecordLine(line []byte, keyF, valF valueFormat) (inRecord, error) {
	var w wireRecord
	if err := decodeStrict(line, &w); err != nil {
		return inRecord{}, err
	}
	r, err := w.toRecord(keyF, valF)
	if err != nil {
		return inRecord{}, errorf(CodeInvalidRecord, "%v", err)
	}
	return r, nil
}

// decodeV2Body decodes a REST Proxy v2 body with keys and values in f
// (formatJSONText or formatBinary).
func decodeV2Body(data []byte, f valueFormat) ([]inRecord, error) {
	var body v2Body
	if err := decodeStrict(data, &body); err != nil {
		return nil, err
	}
	for _, s := range []json.RawMessage{body.KeySchema, body.KeySchemaID, body.ValueSchema, body.ValueSchemaID} {
		if !isNull(s) {
			return nil, errorf(CodeInvalidRecord, "schemas are not supported: use the json or binary embedded format")
		}
	}
	if len(body.Records) == 0 {
		return nil, errorf(CodeInvalidRecord, "no records")
	}
	out := make([]inRecord, len(body.Records))
	for i, r := range body.Records {
		in := inRecord{partition: -1}
		var err error
		if r.Partition != nil {
			if *r.Partition < 0 {
				return nil, errorf(CodeInvalidRecord, "record %d: partition %d is negative", i, *r.Partition)
			}
			in.partition = *r.Partition
		}
		if in.rec.Key, err = decodeValue(r.Key, f); err != nil {
			return nil, errorf(CodeInvalidRecord, "record %d: key: %v", i, err)
		}
		if in.rec.Value, err = decodeValue(r.Value, f); err != nil {
			return nil, errorf(CodeInvalidRecord, "record %d: value: %v", i, err)
		}
		out[i] = in
	}
	return out, nil
}

// decodeStrict decodes exactly one JSON value into v, rejecting unknown
// fields (a misspelt "vaule" must not silently produce a null value, which
// is a tombstone on a compacted topic) and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(CodeBadJSON, "invalid JSON: data after the top-level value")
	}
	return nil
}

// jsonError classifies a decoding error: syntax is 40001, a well-formed
// value of the wrong shape is 42201.
func jsonError(err error) *Error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &mbe):
		return toError(err)
	case errors.As(err, &se):
		return &Error{Code: CodeBadJSON, Message: fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se), err: err}
	case errors.Is(err, io.EOF):
		return &Error{Code: CodeBadJSON, Message: "invalid JSON: empty body", err: err}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Code: CodeBadJSON, Message: "invalid JSON: unexpected end of input", err: err}
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return &Error{Code: CodeInvalidRecord, Message: fmt.Sprintf("%s: JSON %s where %s is wanted", field, te.Value, te.Type), err: err}
	}
	// Unknown fields and the like: well-formed JSON, wrong content.
	return &Error{Code: CodeInvalidRecord, Message: err.Error(), err: err}
}

// toRecord validates a wire record; keyF and valF are the body's defaults.
func (w *wireRecord) toRecord(keyF, valF valueFormat) (inRecord, error) {
	in := inRecord{partition: -1}
	var err error
	if w.Partition != nil {
		if *w.Partition < 0 {
			return in, fmt.Errorf("partition %d is negative", *w.Partition)
		}
		in.partition = *w.Partition
	}
	if keyF, err = parseFormat(w.KeyFormat, keyF); err != nil {
		return in, fmt.Errorf("key_format: %v", err)
	}
	if valF, err = parseFormat(w.ValueFormat, valF); err != nil {
		return in, fmt.Errorf("value_format: %v", err)
	}
	if in.rec.Key, err = decodeValue(w.Key, keyF); err != nil {
		return in, fmt.Errorf("key: %v", err)
	}
	if in.rec.Value, err = decodeValue(w.Value, valF); err != nil {
		return in, fmt.Errorf("value: %v", err)
	}
	if in.rec.Headers, err = decodeHeaders(w.Headers); err != nil {
		return in, fmt.Errorf("headers: %v", err)
	}
	if in.rec.Timestamp, err = decodeTimestamp(w.Timestamp); err != nil {
		return in, fmt.Errorf("timestamp: %v", err)
	}
	return in, nil
}

func isNull(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// decodeValue turns a JSON key or value into record bytes; absent and null
// are nil (a null key, or a tombstone value).
func decodeValue(raw []byte, f valueFormat) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	switch f {
	case formatBinary:
		if raw[0] != '"' {
			return nil, errors.New("want a base64 string (format binary)")
		}
		s, err := jsonString(raw)
		if err != nil {
			return nil, err
		}
		return decodeBase64(s)
	case formatJSON:
		if raw[0] == '"' {
			return jsonString(raw)
		}
		return compactJSON(raw)
	default:
		return compactJSON(raw)
	}
}

// decodeBase64 accepts standard base64 with or without padding.
func decodeBase64(s []byte) ([]byte, error) {
	enc := base64.StdEncoding
	if len(s)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	out := make([]byte, enc.DecodedLen(len(s)))
	n, err := enc.Decode(out, s)
	if err != nil {
		return nil, fmt.Errorf("invalid base64: %v", err)
	}
	return out[:n], nil
}

// jsonString returns the bytes of a JSON string literal. The common case,
// a string without escapes, needs no second parse.
func jsonString(raw []byte) ([]byte, error) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		inner := raw[1 : len(raw)-1]
		if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			return inner, nil // the decoder has checked the syntax
		}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, errors.New("want a string")
	}
	return []byte(s), nil
}

// compactJSON returns raw without insignificant whitespace.
func compactJSON(raw []byte) ([]byte, error) {
	if !bytes.ContainsAny(raw, " \t\r\n") {
		return raw, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// wireHeader is the array form of a header, the one GET returns.
type wireHeader struct {
	Key         string          `json:"key"`
	Value       json.RawMessage `json:"value"`
	ValueFormat string          `json:"value_format"`
}

// decodeHeaders accepts {"name":"value",..} (order kept) or
// [{"key":"name","value":"value","value_format":"binary"},..] (which also
// allows repeated names). Values follow formatJSON unless marked binary.
func decodeHeaders(raw []byte) ([]batch.RecordHeader, error) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return nil, nil
	}
	switch raw[0] {
	case '[':
		var hs []wireHeader
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&hs); err != nil {
			return nil, fmt.Errorf("want [{\"key\":..,\"value\":..}, ..]: %v", err)
		}
		out := make([]batch.RecordHeader, 0, len(hs))
		for _, h := range hs {
			f, err := parseFormat(h.ValueFormat, formatJSON)
			if err != nil {
				return nil, fmt.Errorf("%q: value_format: %v", h.Key, err)
			}
			v, err := decodeValue(h.Value, f)
			if err != nil {
				return nil, fmt.Errorf("%q: %v", h.Key, err)
			}
			out = append(out, batch.RecordHeader{Key: h.Key, Value: v})
		}
		return out, nil
	case '{':
		dec := json.NewDecoder(bytes.NewReader(raw))
		if _, err := dec.Token(); err != nil { // '{'
			return nil, err
		}
		var out []batch.RecordHeader
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := tok.(string)
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return nil, err
			}
			b, err := decodeValue(v, formatJSON)
			if err != nil {
				return nil, fmt.Errorf("%q: %v", k, err)
			}
			out = append(out, batch.RecordHeader{Key: k, Value: b})
		}
		return out, nil
	}
	return nil, errors.New(`want an object {"name":"value"} or an array [{"key":..,"value":..}]`)
}

// decodeTimestamp accepts milliseconds since the epoch or an RFC 3339
// string; absent, null and 0 mean "now" (the broker's clock at produce).
func decodeTimestamp(raw []byte) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return 0, nil
	}
	if raw[0] == '"' {
		s, err := jsonString(raw)
		if err != nil {
			return 0, err
		}
		t, err := time.Parse(time.RFC3339Nano, string(s))
		if err != nil {
			return 0, fmt.Errorf("%q: want milliseconds since the epoch or RFC 3339", s)
		}
		if ms := t.UnixMilli(); ms >= 0 {
			return ms, nil
		}
		return 0, fmt.Errorf("%q is before 1970", s)
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: want a non-negative integer of milliseconds since the epoch", raw)
	}
	return n, nil
}

// outRecord is a record as GET .../records and the SSE tail return it. Keys,
// values and header values that are valid UTF-8 are JSON strings; others
// are base64 with "<field>_format":"binary", so that the record can be
// posted back unchanged and produce the same bytes.
type outRecord struct {
	Topic       string      `json:"topic"`
	Partition   int32       `json:"partition"`
	Offset      int64       `json:"offset"`
	Timestamp   int64       `json:"timestamp"`
	Key         *string     `json:"key"`
	KeyFormat   string      `json:"key_format,omitempty"`
	Value       *string     `json:"value"`
	ValueFormat string      `json:"value_format,omitempty"`
	Headers     []outHeader `json:"headers"`
}

type outHeader struct {
	Key         string  `json:"key"`
	Value       *string `json:"value"`
	ValueFormat string  `json:"value_format,omitempty"`
}

func newOutRecord(topic string, partition int32, r *batch.Record) outRecord {
	o := outRecord{Topic: topic, Partition: partition, Offset: r.Offset, Timestamp: r.Timestamp,
		Headers: make([]outHeader, 0, len(r.Headers))}
	o.Key, o.KeyFormat = encodeBytes(r.Key)
	o.Value, o.ValueFormat = encodeBytes(r.Value)
	for _, h := range r.Headers {
		oh := outHeader{Key: h.Key}
		oh.Value, oh.ValueFormat = encodeBytes(h.Value)
		o.Headers = append(o.Headers, oh)
	}
	return o
}

func encodeBytes(b []byte) (*string, string) {
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
