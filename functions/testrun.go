package functions

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wispbus/wisp/internal/batch"
	"github.com/wispbus/wisp/wasm"
)

// TestOptions configure TestRun.
type TestOptions struct {
	// Env is the module's environment, as a manifest's env.
	Env map[string]string
	// Topic is the input topic the module is told about, for lines that
	// do not name one. Default "input".
	Topic string
	// Outputs, when set, are the declared outputs: the first is the
	// default, and writing elsewhere fails the record as it would on the
	// bus. Empty: any topic is accepted and the default shows as "".
	Outputs []string
	// MemoryMB and Timeout are the sandbox limits (defaults as Limits).
	MemoryMB int
	Timeout  time.Duration
	// BatchSize is how many records go into one call. Default 100.
	BatchSize int
	// Log receives the module's stdout and stderr. Default: discarded.
	Log io.Writer
	// Runtime to compile in. Default: a fresh one without a disk cache.
	Runtime *wasm.Runtime
}

// TestRun runs a module over records read as NDJSON from in and writes
// what it produces, as NDJSON, to out: `wisp fn test --module F.wasm <
// input.ndjson`, without a server. The module is validated as Deploy
// validates it.
//
// Input, one record per line (every field optional):
//
//	{"key": "k1", "value": {"user": "ann"}, "headers": {"h": "v"},
//	 "timestamp": 1700000000000, "offset": 7, "partition": 0, "topic": "clicks"}
//
// key, value and header values: a JSON string is its bytes, any other
// JSON value its compact JSON text, null is null; with "key_format" or
// "value_format": "binary" the string is base64. headers may also be a
// list of {"key": .., "value": ..}. timestamp is Unix milliseconds or
// RFC 3339 (default: now); offset defaults to the line's number counting
// from 0, partition to 0, topic to TestOptions.Topic.
//
// Output, one line per record written, in input order:
//
//	{"offset": 7, "topic": "out", "partition": -1, "key": "k1", "value": "...",
//	 "headers": {"h": "v"}, "timestamp": 1700000000000}
//
// and one line per failed input record: {"offset": 7, "error": "..."}.
// "partition" is -1 when the module let the host choose. Keys, values and
// header values that are not valid UTF-8 are base64, flagged by
// "key_format"/"value_format"/"headers_format": "binary".
func TestRun(ctx context.Context, module []byte, opts TestOptions, in io.Reader, out io.Writer) error {
	if opts.Topic == "" {
		opts.Topic = "input"
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 100
	}
	lim := Limits{MemoryMB: opts.MemoryMB, Timeout: opts.Timeout}.withDefaults()
	rt := opts.Runtime
	if rt == nil {
		var err error
		if rt, err = wasm.NewRuntime(ctx, wasm.Config{}); err != nil {
			return err
		}
		defer rt.Close(context.Background())
	}
	mod, err := rt.Compile(ctx, module)
	if err != nil {
		return err
	}
	defer mod.Close(context.Background())
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	logw = &lockedWriter{w: logw}
	env := maps.Clone(opts.Env)
	if env == nil {
		env = map[string]string{}
	}
	env["WISP_FUNCTION"] = "test"
	env["WISP_FUNCTION_VERSION"] = "0"
	env["WISP_INPUT_TOPIC"] = opts.Topic
	env["WISP_OUTPUT_TOPICS"] = strings.Join(opts.Outputs, ",")
	pool, err := mod.NewPool(ctx, wasm.PoolConfig{Name: "test", Env: env, MemoryLimit: uint64(lim.MemoryMB) << 20,
		Timeout: lim.Timeout, MaxInstances: 1, Stdout: logw, Stderr: logw})
	if err != nil {
		return err
	}
	defer pool.Close(context.Background())

	bw := bufio.NewWriter(out)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	cur := &wasm.Batch{}
	flush := func() error {
		if len(cur.Records) == 0 {
			return nil
		}
		err := runTestBatch(ctx, pool, cur, opts.Outputs, enc)
		cur = &wasm.Batch{}
		return err
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for line := 0; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		topic, partition, rec, err := parseTestLine(text, int64(line))
		if err != nil {
			return fmt.Errorf("functions: input line %d: %w", line+1, err)
		}
		if topic == "" {
			topic = opts.Topic
		}
		if len(cur.Records) > 0 && (cur.Topic != topic || cur.Partition != partition || len(cur.Records) >= opts.BatchSize) {
			if err := flush(); err != nil {
				return err
			}
		}
		cur.Topic, cur.Partition = topic, partition
		cur.Records = append(cur.Records, rec)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("functions: reading input: %w", err)
	}
	if err := flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// runTestBatch runs one batch; a batch that fails as a whole is run again
// record by record, so that each failure is reported against its record.
func runTestBatch(ctx context.Context, pool *wasm.Pool, b *wasm.Batch, outputs []string, enc *json.Encoder) error {
	var res wasm.Results
	err := pool.Process(ctx, b, &res)
	if err != nil && !wasm.IsModuleFailure(err) {
		return err
	}
	if err != nil {
		if len(b.Records) == 1 {
			return enc.Encode(testError{Offset: b.Records[0].Offset, Error: err.Error()})
		}
		for i := range b.Records {
			one := &wasm.Batch{Topic: b.Topic, Partition: b.Partition, Records: b.Records[i : i+1]}
			if err := runTestBatch(ctx, pool, one, outputs, enc); err != nil {
				return err
			}
		}
		return nil
	}
	for i, r := range res.Records {
		off := b.Records[i].Offset
		if r.Err != "" {
			if err := enc.Encode(testError{Offset: off, Error: r.Err}); err != nil {
				return err
			}
			continue
		}
		var lines []testOutput
		failed := ""
		for _, o := range r.Outputs {
			topic := o.Topic
			if len(outputs) > 0 {
				if topic == "" {
					topic = outputs[0]
				}
				if !slices.Contains(outputs, topic) {
					failed = fmt.Sprintf("write to undeclared topic %q (declared: %s)", topic, strings.Join(outputs, ", "))
					break
				}
			}
			lines = append(lines, newTestOutput(off, topic, o))
		}
		if failed != "" {
			if err := enc.Encode(testError{Offset: off, Error: failed}); err != nil {
				return err
			}
			continue
		}
		for _, l := range lines {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
	}
	return nil
}

type testError struct {
	Offset int64  `json:"offset"`
	Error  string `json:"error"`
}

type testOutput struct {
	Offset        int64             `json:"offset"`
	Topic         string            `json:"topic"`
	Partition     int32             `json:"partition"`
	Key           *string           `json:"key"`
	KeyFormat     string            `json:"key_format,omitempty"`
	Value         *string           `json:"value"`
	ValueFormat   string            `json:"value_format,omitempty"`
	Headers       map[string]string `json:"headers,omitempty"`
	HeadersFormat string            `json:"headers_format,omitempty"`
	Timestamp     int64             `json:"timestamp"`
}

func newTestOutput(offset int64, topic string, o wasm.Output) testOutput {
	t := testOutput{Offset: offset, Topic: topic, Partition: o.Partition, Timestamp: o.Record.Timestamp}
	t.Key, t.KeyFormat = textOrBase64(o.Record.Key)
	t.Value, t.ValueFormat = textOrBase64(o.Record.Value)
	if len(o.Record.Headers) > 0 {
		t.Headers = map[string]string{}
		binary := false
		for _, h := range o.Record.Headers {
			binary = binary || !utf8.Valid(h.Value)
		}
		for _, h := range o.Record.Headers {
			if binary {
				t.Headers[h.Key] = base64.StdEncoding.EncodeToString(h.Value)
			} else {
				t.Headers[h.Key] = string(h.Value)
			}
		}
		if binary {
			t.HeadersFormat = "binary"
		}
	}
	return t
}

func textOrBase64(b []byte) (*string, string) {
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

type testInput struct {
	Key         json.RawMessage `json:"key"`
	Value       json.RawMessage `json:"value"`
	KeyFormat   string          `json:"key_format"`
	ValueFormat string          `json:"value_format"`
	Headers     json.RawMessage `json:"headers"`
	Timestamp   json.RawMessage `json:"timestamp"`
	Offset      *int64          `json:"offset"`
	Partition   int32           `json:"partition"`
	Topic       string          `json:"topic"`
}

func parseTestLine(line []byte, n int64) (string, int32, batch.Record, error) {
	var in testInput
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return "", 0, batch.Record{}, err
	}
	rec := batch.Record{Offset: n, Timestamp: time.Now().UnixMilli()}
	if in.Offset != nil {
		rec.Offset = *in.Offset
	}
	var err error
	if rec.Key, err = jsonBytes(in.Key, in.KeyFormat); err != nil {
		return "", 0, rec, fmt.Errorf("key: %w", err)
	}
	if rec.Value, err = jsonBytes(in.Value, in.ValueFormat); err != nil {
		return "", 0, rec, fmt.Errorf("value: %w", err)
	}
	if len(in.Timestamp) > 0 && string(in.Timestamp) != "null" {
		var ms int64
		var s string
		switch {
		case json.Unmarshal(in.Timestamp, &ms) == nil:
			rec.Timestamp = ms
		case json.Unmarshal(in.Timestamp, &s) == nil:
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return "", 0, rec, fmt.Errorf("timestamp: %w", err)
			}
			rec.Timestamp = t.UnixMilli()
		default:
			return "", 0, rec, errors.New("timestamp: want milliseconds or RFC 3339")
		}
	}
	if rec.Headers, err = jsonHeaders(in.Headers); err != nil {
		return "", 0, rec, fmt.Errorf("headers: %w", err)
	}
	return in.Topic, in.Partition, rec, nil
}

// jsonBytes converts a JSON key or value to bytes: a string is its
// bytes (base64-decoded for format "binary"), null is nil, anything else
// its compact JSON text.
func jsonBytes(raw json.RawMessage, format string) ([]byte, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		switch format {
		case "", "json":
			return []byte(s), nil
		case "binary", "base64":
			return base64.StdEncoding.DecodeString(s)
		default:
			return nil, fmt.Errorf("format %q (want json or binary)", format)
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func jsonHeaders(raw json.RawMessage) ([]batch.RecordHeader, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err == nil {
		keys := slices.Collect(maps.Keys(obj))
		sort.Strings(keys)
		out := make([]batch.RecordHeader, 0, len(keys))
		for _, k := range keys {
			v, err := jsonBytes(obj[k], "")
			if err != nil {
				return nil, err
			}
			out = append(out, batch.RecordHeader{Key: k, Value: v})
		}
		return out, nil
	}
	var list []struct {
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errors.New("want an object or a list of {key, value}")
	}
	out := make([]batch.RecordHeader, 0, len(list))
	for _, h := range list {
		v, err := jsonBytes(h.Value, "")
		if err != nil {
			return nil, err
		}
		out = append(out, batch.RecordHeader{Key: h.Key, Value: v})
	}
	return out, nil
}

// lockedWriter serialises writes from the module's instances.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
