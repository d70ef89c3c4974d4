package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/batch"
)

const (
	benchRecords   = 100 // records per request
	benchValueSize = 100 // bytes per value
)

// BenchmarkHTTPProduce measures records/s through POST /v1/topics/{t}/records
// with 100 records of 100 B per request on keep-alive connections, next to
// its peer measured in the same run: the same batches appended with
// Broker.Produce directly (the floor the HTTP layer adds to). Each runs
// with the default durability (flush=always: fsync before the answer) and
// with flush=os.
//
//	go test -run '^$' -bench HTTPProduce -benchtime 2s ./httpapi
func BenchmarkHTTPProduce(b *testing.B) {
	value := strings.Repeat("v", benchValueSize)
	recs := make([]string, benchRecords)
	for i := range recs {
		recs[i] = `{"value":"` + value + `"}`
	}
	body := []byte(`{"records":[` + strings.Join(recs, ",") + `]}`)
	for _, flush := range []string{"always", "os"} {
		cfg := map[string]string{bus.ConfigFlush: flush}
		b.Run("flush="+flush+"/bus-direct", func(b *testing.B) {
			e := startEnv(b)
			e.createTopic(b, "bench", 1, cfg)
			rs := make([]batch.Record, benchRecords)
			for i := range rs {
				rs[i] = batch.Record{Value: []byte(value)}
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				bt, err := batch.Build(batch.NoProducer, rs)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.b.Produce(context.Background(), "bench", 0, bt, bus.AcksAll); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n*benchRecords)/b.Elapsed().Seconds(), "records/s")
		})
		b.Run("flush="+flush+"/http", func(b *testing.B) {
			e := startEnv(b)
			e.createTopic(b, "bench", 1, cfg)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			url := e.base + "/v1/topics/bench/records"
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			n := 0
			for b.Loop() {
				post(b, client, url, body)
				n++
			}
			b.ReportMetric(float64(n*benchRecords)/b.Elapsed().Seconds(), "records/s")
		})
		b.Run("flush="+flush+"/http-8conns", func(b *testing.B) {
			e := startEnv(b)
			e.createTopic(b, "bench", 1, cfg)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			url := e.base + "/v1/topics/bench/records"
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			b.SetParallelism(4) // 4 x GOMAXPROCS(2) = 8 clients
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					post(b, client, url, body)
					n.Add(1)
				}
			})
			b.ReportMetric(float64(n.Load()*benchRecords)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func post(b *testing.B, c *http.Client, url string, body []byte) {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		panic(fmt.Sprintf("status %d", resp.StatusCode))
	}
}
