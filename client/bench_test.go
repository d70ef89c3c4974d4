package client

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkProduce: one producer, async, acks=leader, against an
// in-process node, reporting records/s and MB/s of values.
func BenchmarkProduce(b *testing.B) {
	for _, flush := range []string{"os", "always"} {
		for _, size := range []int{100, 1000} {
			b.Run(fmt.Sprintf("flush=%s/size=%d", flush, size), func(b *testing.B) {
				n := startNode(b, map[string]string{"flush": flush})
				c := n.client(b, RequiredAcks(AcksLeader))
				ctx := context.Background()
				topic := "bench"
				if _, err := c.CreateTopic(ctx, TopicSpec{Name: topic, Partitions: 1}); err != nil {
					b.Fatal(err)
				}
				val := make([]byte, size)
				var failed atomic.Int64
				var firstErr atomic.Value
				promise := func(_ *Record, err error) {
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
				}
				b.ReportAllocs()
				b.SetBytes(int64(size))
				start := time.Now()
				count := 0
				for b.Loop() {
					c.Produce(ctx, &Record{Topic: topic, Value: val}, promise)
					count++
				}
				if err := c.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				el := time.Since(start)
				if failed.Load() > 0 {
					b.Fatalf("%d records failed, first: %v", failed.Load(), firstErr.Load())
				}
				b.ReportMetric(float64(count)/el.Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkConsume: one consumer reading 100 B records from a fetch
// session; one iteration reads the whole topic.
func BenchmarkConsume(b *testing.B) {
	const total = 1_000_000
	n := startNode(b, map[string]string{"flush": "os"})
	c := n.client(b, RequiredAcks(AcksLeader))
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, TopicSpec{Name: "bench", Partitions: 1}); err != nil {
		b.Fatal(err)
	}
	val := make([]byte, 100)
	for range total {
		c.Produce(ctx, &Record{Topic: "bench", Value: val}, nil)
	}
	if err := c.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(total * 100)
	start := time.Now()
	iters := 0
	for b.Loop() {
		k, err := c.NewConsumer(ctx, Topics("bench"))
		if err != nil {
			b.Fatal(err)
		}
		got := 0
		for _, err := range k.Records(ctx) {
			if err != nil {
				b.Fatal(err)
			}
			if got++; got == total {
				break
			}
		}
		k.Close(ctx)
		iters++
	}
	b.ReportMetric(float64(iters*total)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkProduceSyncLatency: one record at a time, acks=leader, flush=os
// and flush=always; reports p50 and p99.
func BenchmarkProduceSyncLatency(b *testing.B) {
	for _, flush := range []string{"os", "always"} {
		b.Run("flush="+flush, func(b *testing.B) {
			n := startNode(b, map[string]string{"flush": flush})
			c := n.client(b, RequiredAcks(AcksLeader))
			ctx := context.Background()
			if _, err := c.CreateTopic(ctx, TopicSpec{Name: "lat", Partitions: 1}); err != nil {
				b.Fatal(err)
			}
			val := make([]byte, 100)
			var lat []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if err := c.ProduceSync(ctx, &Record{Topic: "lat", Value: val}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
