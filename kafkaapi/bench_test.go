package kafkaapi

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/batch"
)

// BenchmarkKgoProduce measures franz-go producing 100-byte records to the
// listener with its defaults (idempotent, acks=all; the topic fsyncs
// before acknowledging, with group commit). One op is one record.
//
//	go test -run '^$' -bench KgoProduce -benchtime 200000x ./kafkaapi
func BenchmarkKgoProduce(b *testing.B) {
	for _, parts := range []int32{1, 4} {
		b.Run(fmt.Sprintf("partitions=%d", parts), func(b *testing.B) {
			ts := startServer(b)
			createTopic(b, ts, "bench", parts)
			cl := ts.client(b, kgo.DefaultProduceTopic("bench"))
			ctx := context.Background()
			value := make([]byte, 100)
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
				b.Fatal(err)
			}
			var failed atomic.Int64
			var firstErr atomic.Value
			done := func(_ *kgo.Record, err error) {
				if err != nil && failed.Add(1) == 1 {
					firstErr.Store(err)
				}
			}
			b.ReportAllocs()
			start := time.Now()
			n := 0
			for b.Loop() {
				cl.Produce(ctx, &kgo.Record{Value: value}, done)
				n++
			}
			if err := cl.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			if failed.Load() > 0 {
				b.Fatalf("%d records failed: %v", failed.Load(), firstErr.Load())
			}
			b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(n)*100/elapsed.Seconds()/1e6, "MB/s")
		})
	}
}

// BenchmarkKgoConsume measures franz-go consuming 100-byte records
// through the listener: batches of 100 records written with bus.Produce,
// read from the start with a direct consumer. One op is one record.
func BenchmarkKgoConsume(b *testing.B) {
	ts := startServer(b)
	createTopic(b, ts, "bench", 1)
	value := make([]byte, 100)
	recs := make([]batch.Record, 100)
	for i := range recs {
		recs[i].Value = value
	}
	n := 0
	for n < b.N {
		bb, err := batch.Build(batch.NoProducer, recs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ts.b.Produce(context.Background(), "bench", 0, bb, bus.AcksLeader); err != nil {
			b.Fatal(err)
		}
		n += len(recs)
	}
	cl := ts.client(b, kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := ctxTimeout(b, 5*time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	got := 0
	for got < b.N {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			b.Fatal(err)
		}
		got += fs.NumRecords()
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(got)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(got)*100/elapsed.Seconds()/1e6, "MB/s")
}
