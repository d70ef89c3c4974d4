package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/internal/testnode"
)

// TestHTTPProduceThenConsume: records posted to the HTTP API are read back
// unchanged by the CLI and by the Go client, keyed ones on Kafka's
// partition for their key.
func TestHTTPProduceThenConsume(t *testing.T) {
	n := testnode.Start(t)
	c := newClient(t, n)
	const topic, parts, count = "from-http", 2, 40
	createTopic(t, c, topic, parts)

	var recs []string
	for i := range count {
		recs = append(recs, fmt.Sprintf(`{"key":"k%d","value":"v%d","headers":{"via":"http"}}`, i, i))
	}
	status, _, body := httpDo(t, n, "POST", "/v1/topics/"+topic+"/records", "application/json",
		`{"records":[`+strings.Join(recs, ",")+`]}`)
	if status != http.StatusOK {
		t.Fatalf("POST: %d %s", status, body)
	}
	var answer struct {
		Offsets []struct {
			Partition int32 `json:"partition"`
			Offset    int64 `json:"offset"`
		} `json:"offsets"`
	}
	mustJSON(t, string(body), &answer)
	if len(answer.Offsets) != count {
		t.Fatalf("answer: %s", body)
	}
	for i, o := range answer.Offsets {
		if want := client.KeyPartition([]byte(fmt.Sprintf("k%d", i)), parts); o.Partition != want {
			t.Fatalf("record %d on partition %d, want %d", i, o.Partition, want)
		}
	}

	// The CLI, as JSON lines.
	res := mustWisp(t, n, "", "consume", topic, "-e", "--format", "json")
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != count {
		t.Fatalf("CLI consumed %d records:\n%s", len(lines), res.stdout)
	}
	got := map[string]string{}
	for _, l := range lines {
		var r struct {
			Partition int32  `json:"partition"`
			Offset    int64  `json:"offset"`
			Key       string `json:"key"`
			Value     string `json:"value"`
			Headers   []struct{ Key, Value string }
		}
		mustJSON(t, l, &r)
		i, err := strconv.Atoi(strings.TrimPrefix(r.Key, "k"))
		if err != nil || answer.Offsets[i].Partition != r.Partition || answer.Offsets[i].Offset != r.Offset ||
			len(r.Headers) != 1 || r.Headers[0].Key != "via" || r.Headers[0].Value != "http" {
			t.Fatalf("record %s does not match the POST answer %+v", l, answer.Offsets)
		}
		got[r.Key] = r.Value
	}
	for i := range count {
		if got[fmt.Sprintf("k%d", i)] != fmt.Sprintf("v%d", i) {
			t.Fatalf("k%d: %q", i, got[fmt.Sprintf("k%d", i)])
		}
	}

	// The Go client.
	all := pollAll(t, c, topic, 20*time.Second, func(rs []*client.Record) bool { return len(rs) >= count })
	if len(all) != count {
		t.Fatalf("client consumed %d records", len(all))
	}
	for _, r := range all {
		if want := "v" + strings.TrimPrefix(string(r.Key), "k"); string(r.Value) != want ||
			len(r.Headers) != 1 || string(r.Headers[0].Value) != "http" {
			t.Fatalf("client record %s: %q=%q %v", r, r.Key, r.Value, r.Headers)
		}
	}
}

// TestClientProduceThenHTTPRead: records produced by the Go client are
// served by GET /v1/topics/{t}/records.
func TestClientProduceThenHTTPRead(t *testing.T) {
	n := testnode.Start(t)
	c := newClient(t, n)
	const topic, count = "to-http", 25
	createTopic(t, c, topic, 1)
	var recs []*client.Record
	for i := range count {
		recs = append(recs, &client.Record{Topic: topic, Key: []byte("k"), Value: []byte(fmt.Sprintf("value-%02d", i)),
			Headers: []client.Header{{Key: "n", Value: []byte(strconv.Itoa(i))}}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}

	status, hdr, body := httpDo(t, n, "GET", "/v1/topics/"+topic+"/records?partition=0&offset=earliest&max=100", "", "")
	if status != http.StatusOK {
		t.Fatalf("GET: %d %s", status, body)
	}
	var out []struct {
		Topic     string  `json:"topic"`
		Partition int32   `json:"partition"`
		Offset    int64   `json:"offset"`
		Timestamp int64   `json:"timestamp"`
		Key       *string `json:"key"`
		Value     *string `json:"value"`
		Headers   []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"headers"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(out) != count || hdr.Get("X-Wisp-High-Watermark") != strconv.Itoa(count) {
		t.Fatalf("GET answered %d records, high watermark %q", len(out), hdr.Get("X-Wisp-High-Watermark"))
	}
	for i, r := range out {
		if r.Topic != topic || r.Offset != int64(i) || r.Key == nil || *r.Key != "k" || r.Value == nil ||
			*r.Value != fmt.Sprintf("value-%02d", i) || len(r.Headers) != 1 || r.Headers[0].Value != strconv.Itoa(i) ||
			r.Timestamp != recs[i].Timestamp.UnixMilli() {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
}
