package log

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/wispbus/wisp/internal/batch"
)

// benchBatch is one uncompressed batch of 1,000 records with size-byte
// values.
func benchBatch(b *testing.B, size int) []byte {
	recs := make([]batch.Record, 1000)
	val := make([]byte, size)
	for i := range val {
		val[i] = byte(i)
	}
	for i := range recs {
		recs[i] = batch.Record{Timestamp: 1_700_000_000_000, Value: val}
	}
	return build(b, batch.None, recs)
}

func benchConfig(p FlushPolicy) Config {
	cfg := DefaultConfig()
	cfg.Flush = p
	cfg.SegmentBytes = 256 << 20
	cfg.RetentionBytes = 512 << 20
	cfg.RetentionAge = 0
	return cfg
}

// BenchmarkAppend appends batches of 1,000 records of 100 B and 1 KB; under
// FlushAlways every append also waits for its Sync.
func BenchmarkAppend(b *testing.B) {
	for _, p := range []FlushPolicy{FlushOS, FlushAlways} {
		for _, size := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/%dB", p, size), func(b *testing.B) {
				l := openT(b, b.TempDir(), benchConfig(p))
				buf := benchBatch(b, size)
				b.SetBytes(int64(len(buf)))
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					_, last, err := l.Append(buf, 0)
					if err != nil {
						b.Fatal(err)
					}
					if p == FlushAlways {
						if err := l.Sync(context.Background(), last+1); err != nil {
							b.Fatal(err)
						}
					}
					if n++; n%512 == 0 { // keep the disk footprint bounded
						if _, err := l.Retain(timeNow()); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkAppendConcurrent has 4 appenders, each waiting for its own
// Sync under FlushAlways: group commit lets one fsync serve several.
func BenchmarkAppendConcurrent(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("always/4x/%dB", size), func(b *testing.B) {
			l := openT(b, b.TempDir(), benchConfig(FlushAlways))
			const workers = 4
			work := make(chan struct{}, workers)
			var wg sync.WaitGroup
			var fail error
			var failOnce sync.Once
			for w := 0; w < workers; w++ {
				buf := benchBatch(b, size)
				b.SetBytes(int64(len(buf)))
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						_, last, err := l.Append(buf, 0)
						if err == nil {
							err = l.Sync(context.Background(), last+1)
						}
						if err != nil {
							failOnce.Do(func() { fail = err })
						}
					}
				}()
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				work <- struct{}{}
				if n++; n%512 == 0 {
					if _, err := l.Retain(timeNow()); err != nil {
						b.Fatal(err)
					}
				}
			}
			close(work)
			wg.Wait()
			if fail != nil {
				b.Fatal(fail)
			}
			b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkReadSequential reads a 128 MiB log front to back in 1 MiB
// fetches, over and over.
func BenchmarkReadSequential(b *testing.B) {
	l := openT(b, b.TempDir(), benchConfig(FlushOS))
	buf := benchBatch(b, 1000)
	for l.Size() < 128<<20 {
		if _, _, err := l.Append(buf, 0); err != nil {
			b.Fatal(err)
		}
	}
	end := l.EndOffset()
	next := int64(0)
	total := int64(0)
	records := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		data, err := l.Read(next, 1<<20, end)
		if err != nil {
			b.Fatal(err)
		}
		total += int64(len(data))
		for d := data; len(d) > 0; {
			h, _ := batch.ParseHeader(d)
			records += int64(h.NumRecords)
			next = h.NextOffset()
			d = d[h.Size():]
		}
		if next >= end {
			next = 0
		}
	}
	b.SetBytes(total / int64(b.N))
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}
