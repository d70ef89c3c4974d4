package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/wispbus/wisp/internal/murmur2"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/bus/group"
	"github.com/wispbus/wisp/internal/batch"
)

// testEnv is a real broker on a temp dir behind a real server on a free
// loopback port.
type testEnv struct {
	b    *bus.Broker
	s    *Server
	base string
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startEnv(t testing.TB, mod ...func(*bus.Config, *Config)) *testEnv {
	t.Helper()
	bcfg := bus.DefaultConfig()
	bcfg.DataDir = t.TempDir()
	bcfg.Logger = quietLogger()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = quietLogger()
	for _, m := range mod {
		m(&bcfg, &cfg)
	}
	b, err := bus.Open(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("broker close: %v", err)
		}
	})
	return &testEnv{b: b, s: s, base: "http://" + s.Addr().String()}
}

func (e *testEnv) createTopic(t testing.TB, name string, partitions int32, configs map[string]string) {
	t.Helper()
	if _, err := e.b.CreateTopic(context.Background(), bus.TopicSpec{Name: name, Partitions: partitions, Configs: configs}); err != nil {
		t.Fatal(err)
	}
}

// do sends a request and returns status, headers and body.
func (e *testEnv) do(t testing.TB, method, path, ct, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, out
}

// doJSON sends a request and decodes the JSON answer into v (if non-nil).
func (e *testEnv) doJSON(t testing.TB, method, path, ct, body string, wantStatus int, v any) {
	t.Helper()
	status, _, out := e.do(t, method, path, ct, body)
	if status != wantStatus {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, wantStatus, out)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, out)
		}
	}
}

// stored reads every record of a partition straight from the bus.
func (e *testEnv) stored(t testing.TB, topic string, p int32) []batch.Record {
	t.Helper()
	var out []batch.Record
	from := int64(0)
	for {
		res, err := e.b.Fetch(context.Background(), topic, p, from, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Batches) == 0 {
			return out
		}
		err = batch.Each(res.Batches, func(h batch.Header, raw []byte) error {
			recs, err := batch.Records(raw)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if r.Offset >= from {
					out = append(out, r)
				}
			}
			from = h.NextOffset()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// endOffsets are the end offsets of every partition (nil if no topic).
func (e *testEnv) endOffsets(t testing.TB, topic string) []int64 {
	t.Helper()
	info, err := e.b.Topic(topic)
	if err != nil {
		return nil
	}
	var out []int64
	for _, p := range info.Partitions {
		out = append(out, p.EndOffset)
	}
	return out
}

type errBody struct {
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

type v1Response struct {
	Offsets []struct {
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
		ErrorCode int    `json:"error_code"`
		Error     string `json:"error"`
	} `json:"offsets"`
}

func checkRecord(t *testing.T, got batch.Record, key, value []byte, ts int64, headers ...string) {
	t.Helper()
	if !sameBytes(got.Key, key) || !sameBytes(got.Value, value) {
		t.Errorf("offset %d: key %q value %q, want %q %q", got.Offset, got.Key, got.Value, key, value)
	}
	if ts != 0 && got.Timestamp != ts {
		t.Errorf("offset %d: timestamp %d, want %d", got.Offset, got.Timestamp, ts)
	}
	if len(got.Headers)*2 != len(headers) {
		t.Fatalf("offset %d: headers %v, want %q", got.Offset, got.Headers, headers)
	}
	for i, h := range got.Headers {
		if h.Key != headers[2*i] || string(h.Value) != headers[2*i+1] {
			t.Errorf("offset %d: header %d = %q:%q, want %q:%q", got.Offset, i, h.Key, h.Value, headers[2*i], headers[2*i+1])
		}
	}
}

func TestProduceJSONRoundTrip(t *testing.T) {
	e := startEnv(t)
	e.createTopic(t, "orders", 3, nil)
	before := time.Now().UnixMilli()
	body := `{"records":[
		{"key":"k1","value":"hello","partition":1,"headers":{"trace":"abc","z":"1"},"timestamp":1700000000123},
		{"key":"k2","value":{"a": 1, "b": [true, null]},"partition":1},
		{"value":42,"partition":1},
		{"key":"k3","value":null,"partition":1},
		{"value":"caf\u00e9 \"q\"","partition":1,"timestamp":"2023-11-14T22:13:20.5Z"},
		{"value":"","partition":1}
	]}`
	var resp v1Response
	e.doJSON(t, "POST", "/v1/topics/orders/records", "application/json", body, http.StatusOK, &resp)
	if len(resp.Offsets) != 6 {
		t.Fatalf("offsets %+v", resp.Offsets)
	}
	for i, o := range resp.Offsets {
		if o.Partition != 1 || o.Offset != int64(i) || o.ErrorCode != 0 {
			t.Errorf("record %d: %+v", i, o)
		}
	}
	recs := e.stored(t, "orders", 1)
	if len(recs) != 6 {
		t.Fatalf("%d records stored", len(recs))
	}
	checkRecord(t, recs[0], []byte("k1"), []byte("hello"), 1700000000123, "trace", "abc", "z", "1")
	checkRecord(t, recs[1], []byte("k2"), []byte(`{"a":1,"b":[true,null]}`), 0)
	checkRecord(t, recs[2], nil, []byte("42"), 0)
	checkRecord(t, recs[3], []byte("k3"), nil, 0) // a tombstone
	checkRecord(t, recs[4], nil, []byte(`café "q"`), 1700000000500)
	checkRecord(t, recs[5], nil, []byte{}, 0)
	if ts := recs[1].Timestamp; ts < before || ts > time.Now().UnixMilli() {
		t.Errorf("default timestamp %d not the produce time", ts)
	}
	if n := len(e.stored(t, "orders", 0)) + len(e.stored(t, "orders", 2)); n != 0 {
		t.Errorf("%d records on other partitions", n)
	}
}

func TestProduceBinaryRoundTrip(t *testing.T) {
	e := startEnv(t)
	e.createTopic(t, "bin", 1, nil)
	raw := []byte{0, 1, 2, 0xfe, 0xff}
	b64 := base64.StdEncoding.EncodeToString(raw)
	body := fmt.Sprintf(`{"key_format":"binary","value_format":"binary","records":[
		{"key":%q,"value":%q,"headers":[{"key":"h","value":%q,"value_format":"binary"},{"key":"h","value":"text"}],"timestamp":5},
		{"key":null,"value":"dGV4dA"},
		{"value":"plain","value_format":"json"}
	]}`, b64, b64, b64)
	var resp v1Response
	e.doJSON(t, "POST", "/v1/topics/bin/records", "application/json", body, http.StatusOK, &resp)
	recs := e.stored(t, "bin", 0)
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	checkRecord(t, recs[0], raw, raw, 5, "h", string(raw), "h", "text")
	checkRecord(t, recs[1], nil, []byte("text"), 0)
	checkRecord(t, recs[2], nil, []byte("plain"), 0)
}

func TestProduceKeyedRecordsUseMurmur2(t *testing.T) {
	e := startEnv(t)
	const n = 7
	e.createTopic(t, "keyed", n, nil)
	keys := []string{"21", "foobar", "a-little-bit-long-string", "a-little-bit-longer-string",
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", "abc", "", "user-42"}
	var recs []string
	for _, k := range keys {
		recs = append(recs, fmt.Sprintf(`{"key":%q,"value":"v-%s"}`, k, k))
	}
	var resp v1Response
	e.doJSON(t, "POST", "/v1/topics/keyed/records", "", `{"records":[`+strings.Join(recs, ",")+`]}`, http.StatusOK, &resp)
	seen := map[int32]int{}
	for i, k := range keys {
		// Java: Utils.toPositive(Utils.murmur2(keyBytes)) % numPartitions.
		want := (murmur2.Sum([]byte(k)) & 0x7fffffff) % n
		if got := resp.Offsets[i].Partition; got != want {
			t.Errorf("key %q: partition %d, want %d", k, got, want)
		}
		p := resp.Offsets[i].Partition
		stored := e.stored(t, "keyed", p)
		if r := stored[seen[p]]; string(r.Key) != k || r.Offset != resp.Offsets[i].Offset {
			t.Errorf("key %q: stored %q at %d on %d", k, r.Key, r.Offset, p)
		}
		seen[p]++
	}
	// The fixed vector: "foobar" among 50 partitions is 16 in Java Kafka.
	if p := keyPartition([]byte("foobar"), 50); p != 16 {
		t.Errorf("foobar/50 = %d", p)
	}
}

func TestProduceUnkeyedRoundRobinPerRequest(t *testing.T) {
	e := startEnv(t)
	e.createTopic(t, "rr", 3, nil)
	var last int32 = -1
	for req := range 4 {
		var resp v1Response
		e.doJSON(t, "POST", "/v1/topics/rr/records", "application/json",
			`{"records":[{"value":"a"},{"value":"b"},{"value":"c","partition":0}]}`, http.StatusOK, &resp)
		p := resp.Offsets[0].Partition
		if resp.Offsets[1].Partition != p {
			t.Fatalf("request %d: unkeyed records split: %+v", req, resp.Offsets)
		}
		if resp.Offsets[2].Partition != 0 {
			t.Fatalf("explicit partition ignored: %+v", resp.Offsets)
		}
		if last >= 0 && p != (last+1)%3 {
			t.Errorf("request %d went to %d after %d", req, p, last)
		}
		last = p
	}
}

func TestProduceRejectsBadInputWritingNothing(t *testing.T) {
	e := startEnv(t, func(_ *bus.Config, c *Config) { c.MaxBodyBytes = 4096 })
	e.createTopic(t, "t", 2, nil)
	// One good record first in the bad bodies: it must not be written.
	cases := []struct {
		name, ct, query, body string
		status, code          int
	}{
		{"bad JSON", "application/json", "", `{"records":[{"value":"ok"},{"value":}]}`, 400, CodeBadJSON},
		{"trailing garbage", "application/json", "", `{"records":[{"value":"ok"}]}xx`, 400, CodeBadJSON},
		{"empty body", "application/json", "", ``, 400, CodeBadJSON},
		{"misspelt field", "application/json", "", `{"records":[{"value":"ok"},{"vaule":"x"}]}`, 422, CodeInvalidRecord},
		{"bad base64", "application/json", "", `{"records":[{"value":"ok"},{"value":"#not base64#","value_format":"binary"}]}`, 422, CodeInvalidRecord},
		{"no records", "application/json", "", `{"records":[]}`, 422, CodeInvalidRecord},
		{"partition out of range", "application/json", "", `{"records":[{"value":"ok"},{"value":"x","partition":2}]}`, 404, CodePartitionNotFound},
		{"oversized body", "application/json", "", `{"records":[{"value":"ok"},{"value":"` + strings.Repeat("x", 5000) + `"}]}`, 413, CodeTooLarge},
		{"wrong content type", "text/plain", "", `{"records":[{"value":"ok"}]}`, 415, CodeUnsupportedType},
		{"form content type", "application/x-www-form-urlencoded", "", `{"records":[{"value":"ok"}]}`, 415, CodeUnsupportedType},
		{"bad acks", "application/json", "?acks=2", `{"records":[{"value":"ok"}]}`, 400, CodeBadParam},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.endOffsets(t, "t")
			status, hdr, out := e.do(t, "POST", "/v1/topics/t/records"+c.query, c.ct, c.body)
			var eb errBody
			if err := json.Unmarshal(out, &eb); err != nil {
				t.Fatalf("body %q: %v", out, err)
			}
			if status != c.status || eb.Code != c.code || eb.Message == "" {
				t.Fatalf("got %d %+v, want %d %d", status, eb, c.status, c.code)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if after := e.endOffsets(t, "t"); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("end offsets moved %v -> %v", before, after)
			}
		})
	}
	// A bad body to an unknown topic must not create it either.
	status, _, _ := e.do(t, "POST", "/v1/topics/fresh/records", "application/json", `{"records":[{"value":}]}`)
	if status != 400 || e.endOffsets(t, "fresh") != nil {
		t.Fatalf("status %d; topic created by a bad request: %v", status, e.endOffsets(t, "fresh"))
	}
}

func TestProduceUnknownTopic(t *testing.T) {
	t.Run("auto-create", func(t *testing.T) {
		e := startEnv(t)
		var resp v1Response
		e.doJSON(t, "POST", "/v1/topics/auto/records", "application/json", `{"records":[{"value":"x"}]}`, http.StatusOK, &resp)
		if recs := e.stored(t, "auto", 0); len(recs) != 1 {
			t.Fatalf("%d records", len(recs))
		}
	})
	t.Run("no auto-create", func(t *testing.T) {
		e := startEnv(t, func(b *bus.Config, _ *Config) { b.AutoCreateTopics = false })
		var eb errBody
		e.doJSON(t, "POST", "/v1/topics/nope/records", "application/json", `{"records":[{"value":"x"}]}`, http.StatusNotFound, &eb)
		if eb.Code != CodeTopicNotFound {
			t.Fatalf("%+v", eb)
		}
		e.doJSON(t, "POST", "/v1/topics/bad%20name/records", "application/json", `{"records":[{"value":"x"}]}`, http.StatusNotFound, &eb)
	})
}

func TestProduceAcks(t *testing.T) {
	e := startEnv(t)
	e.createTopic(t, "acks", 1, nil)
	for _, acks := range []string{"1", "all", "-1"} {
		var resp v1Response
		e.doJSON(t, "POST", "/v1/topics/acks/records?acks="+acks, "application/json", `{"records":[{"value":"x"}]}`, http.StatusOK, &resp)
		if resp.Offsets[0].Offset < 0 {
			t.Fatalf("acks=%s: %+v", acks, resp)
		}
	}
	var resp v1Response
	e.doJSON(t, "POST", "/v1/topics/acks/records?acks=0", "application/json", `{"records":[{"value":"y"}]}`, http.StatusAccepted, &resp)
	if resp.Offsets[0].Offset != -1 || resp.Offsets[0].Partition != 0 {
		t.Fatalf("acks=0: %+v", resp)
	}
	waitFor(t, 5*time.Second, func() bool { return len(e.stored(t, "acks", 0)) == 4 })
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A record alone over max.message.bytes is refused; a request over it
// is split into several batches, still one append.
func TestProduceLargeRequests(t *testing.T) {
	e := startEnv(t)
	e.createTopic(t, "small", 1, map[string]string{bus.ConfigMaxMessageBytes: "2000"})
	var recs []string
	for i := range 60 {
		recs = append(recs, fmt.Sprintf(`{"value":"%03d%s"}`, i, strings.Repeat("v", 97)))
	}
	var resp v1Response
	e.doJSON(t, "POST", "/v1/topics/small/records", "application/json", `{"records":[`+strings.Join(recs, ",")+`]}`, http.StatusOK, &resp)
	stored := e.stored(t, "small", 0)
	if len(stored) != 60 {
		t.Fatalf("%d stored", len(stored))
	}
	for i, r := range stored {
		if resp.Offsets[i].Offset != r.Offset || !strings.HasPrefix(string(r.Value), fmt.Sprintf("%03d", i)) {
			t.Fatalf("record %d: answer %d, stored %d %q", i, resp.Offsets[i].Offset, r.Offset, r.Value[:3])
		}
	}
	var eb errBody
	e.doJSON(t, "POST", "/v1/topics/small/records", "application/json",
		`{"records":[{"value":"ok"},{"value":"`+strings.Repeat("x", 3000)+`"}]}`, http.StatusRequestEntityTooLarge, &eb)
	if eb.Code != CodeTooLarge || len(e.stored(t, "small", 0)) != 60 {
		t.Fatalf("%+v", eb)
	}
}

type streamLine struct {
	Line      int    `json:"line"`
	Partition *int32 `json:"partition"`
	Offset    *int64 `json:"offset"`
	ErrorCode int    `json:"error_code"`
	Error     string `json:"error"`
}

func TestProduceNDJSONStream(t *testing.T) {
	e := startEnv(t)
	e.createTopic(t, "nd", 2, nil)
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", e.base+"/v1/topics/nd/records?value_format=json", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	respc := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			close(respc)
			return
		}
		respc <- resp
	}()
	write := func(s string) {
		if _, err := io.WriteString(pw, s); err != nil {
			t.Fatal(err)
		}
	}
	// The answer starts before the body ends, and each line is reported
	// before the next is sent: the stream is really streamed.
	write(`{"key":"a","value":"one","partition":1}` + "\n")
	resp := <-respc
	if resp == nil {
		t.FailNow()
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() streamLine {
		t.Helper()
		if !sc.Scan() {
			t.Fatalf("stream ended: %v", sc.Err())
		}
		var l streamLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%q: %v", sc.Bytes(), err)
		}
		return l
	}
	if l := next(); l.Line != 1 || *l.Partition != 1 || *l.Offset != 0 {
		t.Fatalf("line 1: %+v", l)
	}
	write(`{"value":"two","partition":1}` + "\n\n")
	if l := next(); l.Line != 2 || *l.Partition != 1 || *l.Offset != 1 {
		t.Fatalf("line 2: %+v", l)
	}
	// A burst with bad lines in the middle: they are reported, the others
	// are written.
	write(`{"value":"three","partition":1}` + "\n" + `{"value":` + "\n" + `{"value":"x","partition":9}` + "\n" +
		`{"vaule":"typo"}` + "\n" + `{"value":"four","partition":1}`)
	pw.Close()
	want := []struct{ line, code int }{{4, 0}, {5, CodeBadJSON}, {6, CodePartitionNotFound}, {7, CodeInvalidRecord}, {8, 0}}
	var offsets []int64
	for _, w := range want {
		l := next()
		if l.Line != w.line || l.ErrorCode != w.code {
			t.Fatalf("got %+v, want line %d code %d", l, w.line, w.code)
		}
		if w.code == 0 {
			offsets = append(offsets, *l.Offset)
		} else if l.Error == "" || l.Offset != nil {
			t.Fatalf("error report %+v", l)
		}
	}
	if sc.Scan() {
		t.Fatalf("extra line %q", sc.Bytes())
	}
	if fmt.Sprint(offsets) != "[2 3]" {
		t.Fatalf("offsets %v", offsets)
	}
	stored := e.stored(t, "nd", 1)
	var vals []string
	for _, r := range stored {
		vals = append(vals, string(r.Value))
	}
	if strings.Join(vals, ",") != "one,two,three,four" {
		t.Fatalf("stored %v", vals)
	}
}

type v2Resp struct {
	KeySchemaID   *int `json:"key_schema_id"`
	ValueSchemaID *int `json:"value_schema_id"`
	Offsets       []struct {
		Partition *int32  `json:"partition"`
		Offset    *int64  `json:"offset"`
		ErrorCode *int    `json:"error_code"`
		Error     *string `json:"error"`
	} `json:"offsets"`
}

func TestRESTProxyV2(t *testing.T) {
	e := startEnv(t, func(b *bus.Config, _ *Config) { b.AutoCreateTopics = false })
	e.createTopic(t, "v2", 2, nil)

	status, hdr, out := e.do(t, "POST", "/topics/v2", ctV2JSON,
		`{"records":[{"key":"k","value":{"name":"x","n":1}},{"value":"s","partition":1},{"value":[1,2]}]}`)
	if status != 200 || hdr.Get("Content-Type") != ctV2 {
		t.Fatalf("%d %q %s", status, hdr.Get("Content-Type"), out)
	}
	// The exact shape of REST Proxy's answer, nulls included.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatal(err)
	}
	if string(raw["key_schema_id"]) != "null" || string(raw["value_schema_id"]) != "null" || len(raw) != 3 {
		t.Fatalf("shape: %s", out)
	}
	var offs []map[string]json.RawMessage
	if err := json.Unmarshal(raw["offsets"], &offs); err != nil || len(offs) != 3 {
		t.Fatalf("offsets: %s", raw["offsets"])
	}
	if string(offs[1]["partition"]) != "1" || string(offs[1]["offset"]) != "0" || string(offs[1]["error_code"]) != "null" || string(offs[1]["error"]) != "null" {
		t.Fatalf("offset entry: %s", out)
	}
	var kp int32 = (murmur2.Sum([]byte(`"k"`)) & 0x7fffffff) % 2
	if string(offs[0]["partition"]) != fmt.Sprint(kp) {
		t.Fatalf("keyed record on %s, want %d (murmur2 of the JSON key)", offs[0]["partition"], kp)
	}
	// json format: JSON text, strings keep their quotes.
	rs := e.stored(t, "v2", kp)
	checkRecord(t, rs[0], []byte(`"k"`), []byte(`{"name":"x","n":1}`), 0)
	if rs := e.stored(t, "v2", 1); string(rs[len(rs)-1].Value) != `"s"` && string(rs[0].Value) != `"s"` {
		t.Fatalf("string value stored as %q", rs[0].Value)
	}

	// binary format, and the produce-to-partition path.
	var r v2Resp
	status, _, out = e.do(t, "POST", "/topics/v2/partitions/1", ctV2Binary, `{"records":[{"key":"AAE=","value":"aGVsbG8="}]}`)
	if err := json.Unmarshal(out, &r); status != 200 || err != nil || *r.Offsets[0].Partition != 1 || r.Offsets[0].ErrorCode != nil {
		t.Fatalf("%d %s", status, out)
	}
	rs = e.stored(t, "v2", 1)
	checkRecord(t, rs[len(rs)-1], []byte{0, 1}, []byte("hello"), 0)

	errCases := []struct {
		name, path, ct, body string
		status, code         int
	}{
		{"unknown topic", "/topics/nope", ctV2JSON, `{"records":[{"value":1}]}`, 404, CodeTopicNotFound},
		{"unknown partition", "/topics/v2/partitions/7", ctV2JSON, `{"records":[{"value":1}]}`, 404, CodePartitionNotFound},
		{"record partition", "/topics/v2", ctV2JSON, `{"records":[{"value":1,"partition":5}]}`, 404, CodePartitionNotFound},
		{"bad base64", "/topics/v2", ctV2Binary, `{"records":[{"value":"aGVsbG8="},{"value":"***"}]}`, 422, CodeInvalidRecord},
		{"unknown field", "/topics/v2", ctV2JSON, `{"records":[{"valeu":1}]}`, 422, CodeInvalidRecord},
		{"bad JSON", "/topics/v2", ctV2JSON, `{"records":[`, 400, CodeBadJSON},
		{"plain JSON", "/topics/v2", "application/json", `{"records":[{"value":1}]}`, 415, CodeUnsupportedType},
		{"avro", "/topics/v2", "application/vnd.kafka.avro.v2+json", `{"records":[{"value":1}]}`, 415, CodeUnsupportedType},
	}
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			before := fmt.Sprint(e.endOffsets(t, "v2"))
			status, hdr, out := e.do(t, "POST", c.path, c.ct, c.body)
			var eb errBody
			if err := json.Unmarshal(out, &eb); err != nil || status != c.status || eb.Code != c.code || eb.Code/100 != status {
				t.Fatalf("got %d %s, want %d %d", status, out, c.status, c.code)
			}
			if hdr.Get("Content-Type") != ctV2 {
				t.Errorf("Content-Type %q", hdr.Get("Content-Type"))
			}
			if after := fmt.Sprint(e.endOffsets(t, "v2")); after != before {
				t.Fatalf("end offsets moved %s -> %s", before, after)
			}
		})
	}

	var names []string
	e.doJSON(t, "GET", "/topics", "", "", 200, &names)
	if fmt.Sprint(names) != "[v2]" {
		t.Fatalf("topics %v", names)
	}
	var meta struct {
		Name       string            `json:"name"`
		Configs    map[string]string `json:"configs"`
		Partitions []struct {
			Partition int32 `json:"partition"`
			Leader    int32 `json:"leader"`
			Replicas  []struct {
				Broker int32 `json:"broker"`
				Leader bool  `json:"leader"`
				InSync bool  `json:"in_sync"`
			} `json:"replicas"`
		} `json:"partitions"`
	}
	e.doJSON(t, "GET", "/topics/v2", "", "", 200, &meta)
	if meta.Name != "v2" || len(meta.Partitions) != 2 || !meta.Partitions[1].Replicas[0].Leader || meta.Configs["cleanup.policy"] != "delete" {
		t.Fatalf("%+v", meta)
	}
}

type outRec struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	Offset      int64  `json:"offset"`
	Timestamp   int64  `json:"timestamp"`
	Key         *string
	KeyFormat   string `json:"key_format"`
	Value       *string
	ValueFormat string `json:"value_format"`
	Headers     []struct {
		Key         string  `json:"key"`
		Value       *string `json:"value"`
		ValueFormat string  `json:"value_format"`
	} `json:"headers"`
}

func TestFetchRecords(t *testing.T) {
	e := startEnv(t)
	e.createTopic(t, "f", 2, nil)
	e.doJSON(t, "POST", "/v1/topics/f/records", "application/json", `{"records":[
		{"key":"k","value":"text","partition":1,"headers":{"h":"v"},"timestamp":1000},
		{"value":"/w==","value_format":"binary","partition":1,"headers":[{"key":"b","value":"/v8=","value_format":"binary"}]},
		{"value":null,"partition":1},
		{"value":"last","partition":1}]}`, 200, nil)

	status, hdr, out := e.do(t, "GET", "/v1/topics/f/records?partition=1&offset=0&max=3", "", "")
	if status != 200 {
		t.Fatalf("%d %s", status, out)
	}
	var recs []outRec
	if err := json.Unmarshal(out, &recs); err != nil || len(recs) != 3 {
		t.Fatalf("%v %s", err, out)
	}
	if hdr.Get("X-Wisp-Next-Offset") != "3" || hdr.Get("X-Wisp-High-Watermark") != "4" {
		t.Fatalf("headers %v", hdr)
	}
	r := recs[0]
	if r.Topic != "f" || r.Partition != 1 || r.Offset != 0 || r.Timestamp != 1000 || *r.Key != "k" || *r.Value != "text" ||
		r.KeyFormat != "" || len(r.Headers) != 1 || r.Headers[0].Key != "h" || *r.Headers[0].Value != "v" {
		t.Fatalf("record 0: %s", out)
	}
	// Not UTF-8: base64, marked binary.
	if r := recs[1]; *r.Value != "/w==" || r.ValueFormat != "binary" || r.Key != nil || *r.Headers[0].Value != "/v8=" || r.Headers[0].ValueFormat != "binary" {
		t.Fatalf("record 1: %s", out)
	}
	if recs[2].Value != nil {
		t.Fatalf("tombstone: %s", out)
	}

	// A record read back can be posted back as it is: same bytes.
	one, _ := json.Marshal(map[string]any{"records": []json.RawMessage{mustRaw(t, out, 1)}})
	var resp v1Response
	e.doJSON(t, "POST", "/v1/topics/f/records", "application/json", string(one), 200, &resp)
	stored := e.stored(t, "f", 1)
	a, b := stored[1], stored[len(stored)-1]
	if !sameBytes(a.Value, b.Value) || !sameBytes(a.Key, b.Key) || a.Timestamp != b.Timestamp || string(a.Headers[0].Value) != string(b.Headers[0].Value) {
		t.Fatalf("round trip changed the record: %+v vs %+v", a, b)
	}

	// Long poll: wait at the end for a record produced afterwards.
	got := make(chan []outRec, 1)
	go func() {
		resp, err := http.Get(e.base + "/v1/topics/f/records?partition=0&offset=latest&timeout_ms=10000")
		if err != nil {
			t.Error(err)
			got <- nil
			return
		}
		defer resp.Body.Close()
		var rs []outRec
		if err := json.NewDecoder(resp.Body).Decode(&rs); err != nil {
			t.Error(err)
		}
		got <- rs
	}()
	select {
	case rs := <-got:
		t.Fatalf("long poll answered before any produce: %v", rs)
	case <-time.After(200 * time.Millisecond):
	}
	e.doJSON(t, "POST", "/v1/topics/f/records", "application/json", `{"records":[{"value":"late","partition":0}]}`, 200, nil)
	select {
	case rs := <-got:
		if len(rs) != 1 || *rs[0].Value != "late" {
			t.Fatalf("long poll got %+v", rs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long poll did not wake up")
	}

	// An empty read without timeout answers [] at once.
	status, _, out = e.do(t, "GET", "/v1/topics/f/records?partition=0&offset=latest", "", "")
	if status != 200 || strings.TrimSpace(string(out)) != "[]" {
		t.Fatalf("%d %s", status, out)
	}
	for _, c := range []struct {
		query       string
		status, err int
	}{
		{"?partition=5", 404, CodePartitionNotFound},
		{"?partition=x", 400, CodeBadParam},
		{"?offset=-3", 400, CodeBadParam},
		{"?max=0", 400, CodeBadParam},
		{"?offset=99", 416, CodeOffsetOutOfRange},
	} {
		var eb errBody
		e.doJSON(t, "GET", "/v1/topics/f/records"+c.query, "", "", c.status, &eb)
		if eb.Code != c.err {
			t.Errorf("%s: %+v", c.query, eb)
		}
	}
	var eb errBody
	e.doJSON(t, "GET", "/v1/topics/none/records", "", "", 404, &eb)
}

func mustRaw(t *testing.T, arr []byte, i int) json.RawMessage {
	var rs []json.RawMessage
	if err := json.Unmarshal(arr, &rs); err != nil {
		t.Fatal(err)
	}
	return rs[i]
}

// sseEvent is one server-sent event (comments skipped).
type sseEvent struct{ id, event, data string }

func readEvent(t *testing.T, br *bufio.Reader) (sseEvent, error) {
	t.Helper()
	var ev sseEvent
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.event != "" || ev.data != "" {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
}

func TestTailSSE(t *testing.T) {
	e := startEnv(t)
	e.createTopic(t, "tail", 1, nil)
	e.doJSON(t, "POST", "/v1/topics/tail/records", "application/json", `{"records":[{"value":"old"}]}`, 200, nil)

	resp, err := http.Get(e.base + "/v1/topics/tail/records/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	// The opening comment: the subscription stands from here on.
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, ": tail tail/0 from offset 1") {
		t.Fatalf("%q %v", line, err)
	}
	e.doJSON(t, "POST", "/v1/topics/tail/records", "application/json", `{"records":[{"value":"a"},{"key":"k","value":"b"}]}`, 200, nil)
	e.doJSON(t, "POST", "/v1/topics/tail/records", "application/json", `{"records":[{"value":"c"}]}`, 200, nil)
	for i, want := range []string{"a", "b", "c"} {
		ev, err := readEvent(t, br)
		if err != nil {
			t.Fatal(err)
		}
		var r outRec
		if err := json.Unmarshal([]byte(ev.data), &r); err != nil {
			t.Fatal(err)
		}
		if ev.event != "record" || ev.id != fmt.Sprint(i+1) || r.Offset != int64(i+1) || *r.Value != want {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}

	// Resuming with Last-Event-ID starts after that offset.
	req, _ := http.NewRequest("GET", e.base+"/v1/topics/tail/records/stream", nil)
	req.Header.Set("Last-Event-ID", "1")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	br2 := bufio.NewReader(resp2.Body)
	if ev, err := readEvent(t, br2); err != nil || ev.id != "2" {
		t.Fatalf("resume: %+v %v", ev, err)
	}

	// Close ends the streams and returns.
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- e.s.Close(ctx)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked by open SSE streams")
	}
	if _, err := readEvent(t, br); err == nil {
		t.Fatal("stream still open after Close")
	}
}

func TestAdminTopics(t *testing.T) {
	e := startEnv(t)
	var created struct {
		Name       string            `json:"name"`
		ID         string            `json:"id"`
		Configs    map[string]string `json:"configs"`
		Partitions []struct {
			Partition     int32 `json:"partition"`
			HighWatermark int64 `json:"high_watermark"`
			RecordsIn     int64 `json:"records_in"`
		} `json:"partitions"`
	}
	status, hdr, out := e.do(t, "POST", "/v1/topics", "application/json", `{"name":"adm","partitions":3,"configs":{"retention.ms":"60000"}}`)
	if status != 201 || hdr.Get("Location") != "/v1/topics/adm" {
		t.Fatalf("%d %s", status, out)
	}
	if err := json.Unmarshal(out, &created); err != nil || created.Name != "adm" || len(created.Partitions) != 3 || created.Configs["retention.ms"] != "60000" || created.ID == "" {
		t.Fatalf("%v %s", err, out)
	}
	for _, c := range []struct {
		body         string
		status, code int
	}{
		{`{"name":"adm"}`, 409, CodeTopicExists},
		{`{"name":"bad/name"}`, 422, CodeInvalidTopic},
		{`{"name":""}`, 422, CodeInvalidTopic},
		{`{"name":"x","partitions":2,"configs":{"no.such":"1"}}`, 422, CodeInvalidTopic},
		{`{"name":"x","replication_factor":3}`, 422, CodeInvalidTopic},
		{`{"name":"x","partitions":"two"}`, 422, CodeInvalidTopic},
		{`{"name":`, 400, CodeBadJSON},
	} {
		var eb errBody
		e.doJSON(t, "POST", "/v1/topics", "application/json", c.body, c.status, &eb)
		if eb.Code != c.code {
			t.Errorf("%s: %+v", c.body, eb)
		}
	}
	e.doJSON(t, "POST", "/v1/topics/adm/records", "application/json", `{"records":[{"value":"x","partition":2}]}`, 200, nil)
	e.doJSON(t, "GET", "/v1/topics/adm", "", "", 200, &created)
	if created.Partitions[2].HighWatermark != 1 || created.Partitions[2].RecordsIn != 1 {
		t.Fatalf("%+v", created)
	}
	var list struct {
		Topics []struct {
			Name string `json:"name"`
		} `json:"topics"`
	}
	e.doJSON(t, "GET", "/v1/topics", "", "", 200, &list)
	if len(list.Topics) != 1 || list.Topics[0].Name != "adm" {
		t.Fatalf("%+v", list)
	}
	e.doJSON(t, "DELETE", "/v1/topics/adm", "", "", 204, nil)
	var eb errBody
	e.doJSON(t, "GET", "/v1/topics/adm", "", "", 404, &eb)
	e.doJSON(t, "DELETE", "/v1/topics/adm", "", "", 404, &eb)
	if eb.Code != CodeTopicNotFound {
		t.Fatalf("%+v", eb)
	}
}

func TestGroupsLagAndMetrics(t *testing.T) {
	e := startEnv(t)
	e.createTopic(t, "m", 2, nil)
	e.doJSON(t, "POST", "/v1/topics/m/records", "application/json",
		`{"records":[{"value":"a","partition":0},{"value":"b","partition":0},{"value":"c","partition":0},{"value":"d","partition":1}]}`, 200, nil)
	e.doJSON(t, "GET", "/v1/topics/m/records?partition=0", "", "", 200, nil)
	err := e.b.Groups().CommitOffsets("readers", "", -1, map[group.TopicPartition]group.OffsetCommit{
		{Topic: "m", Partition: 0}: {Offset: 1, LeaderEpoch: -1},
		{Topic: "m", Partition: 1}: {Offset: 1, LeaderEpoch: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	var gs struct {
		Groups []struct {
			Group      string `json:"group"`
			Lag        int64  `json:"lag"`
			Partitions []struct {
				Topic         string `json:"topic"`
				Partition     int32  `json:"partition"`
				Committed     int64  `json:"committed_offset"`
				HighWatermark int64  `json:"high_watermark"`
				Lag           int64  `json:"lag"`
			} `json:"partitions"`
		} `json:"groups"`
	}
	e.doJSON(t, "GET", "/v1/groups", "", "", 200, &gs)
	if len(gs.Groups) != 1 || gs.Groups[0].Group != "readers" || gs.Groups[0].Lag != 2 || len(gs.Groups[0].Partitions) != 2 {
		t.Fatalf("%+v", gs)
	}
	if p := gs.Groups[0].Partitions[0]; p.Committed != 1 || p.HighWatermark != 3 || p.Lag != 2 {
		t.Fatalf("%+v", p)
	}

	status, _, out := e.do(t, "GET", "/metrics", "", "")
	if status != 200 {
		t.Fatalf("%d", status)
	}
	text := string(out)
	for _, want := range []string{
		`wisp_topic_records_in_total{topic="m"} 4`,
		`wisp_topic_records_out_total{topic="m"} 3`,
		`wisp_topic_bytes_in_total{topic="m"} `,
		`wisp_consumer_group_lag{group="readers",partition="0",topic="m"} 2`,
		`wisp_consumer_group_lag{group="readers",partition="1",topic="m"} 0`,
		`wisp_request_duration_seconds_count{api="Produce",frontend="http"}`,
		`wisp_request_duration_seconds_bucket{api="Fetch",frontend="http",le="+Inf"}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestHealthAndReady(t *testing.T) {
	e := startEnv(t)
	e.doJSON(t, "GET", "/healthz", "", "", 200, nil)
	e.doJSON(t, "GET", "/readyz", "", "", 200, nil)
	if err := e.b.Close(); err != nil {
		t.Fatal(err)
	}
	var eb errBody
	e.doJSON(t, "GET", "/readyz", "", "", 503, &eb)
	if eb.Code != CodeUnavailable {
		t.Fatalf("%+v", eb)
	}
	e.doJSON(t, "GET", "/healthz", "", "", 200, nil)
}

func TestHandleMountsRoutesAndCloseBeforeStart(t *testing.T) {
	bcfg := bus.DefaultConfig()
	bcfg.DataDir = t.TempDir()
	bcfg.Logger = quietLogger()
	b, err := bus.Open(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = quietLogger()
	s, err := New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("POST /v1/functions", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, errorf(CodeInvalidRecord, "mounted"))
	}))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+s.Addr().String()+"/v1/functions", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 422 || !bytes.Contains(body, []byte("mounted")) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != ErrClosed {
		t.Fatalf("start after close: %v", err)
	}

	s2, _ := New(cfg, b)
	if err := s2.Close(context.Background()); err != nil { // never started
		t.Fatal(err)
	}
	for _, bad := range []Config{{Addr: "", MaxBodyBytes: 1}, {Addr: "nohostport", MaxBodyBytes: 1}, {Addr: "127.0.0.1:0"}} {
		if _, err := New(bad, b); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
}

// Close must not wait for clients: an idle NDJSON stream and a long poll
// both end, and Close returns well before its deadline.
func TestCloseEndsStreamsAndPolls(t *testing.T) {
	e := startEnv(t)
	e.createTopic(t, "c", 1, nil)
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest("POST", e.base+"/v1/topics/c/records", pr)
	req.Header.Set("Content-Type", "application/x-ndjson")
	respc := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
		}
		respc <- resp
	}()
	if _, err := io.WriteString(pw, `{"value":"x"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	resp := <-respc
	if resp == nil {
		t.FailNow()
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, `"offset":0`) {
		t.Fatalf("%q %v", line, err)
	}
	polled := make(chan int, 1)
	go func() {
		resp, err := http.Get(e.base + "/v1/topics/c/records?offset=latest&timeout_ms=30000")
		if err != nil {
			polled <- -1
			return
		}
		resp.Body.Close()
		polled <- resp.StatusCode
	}()
	time.Sleep(100 * time.Millisecond) // let the poll start waiting
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("NDJSON stream still open")
	}
	if code := <-polled; code != 200 {
		t.Fatalf("long poll ended with %d", code)
	}
}
