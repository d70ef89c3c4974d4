package wasm

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wispbus/wisp/internal/batch"
	"github.com/wispbus/wisp/wasm/wasmtest"
)

// benchBatch is 1000 records of 100-byte values with 16-byte keys.
func benchBatch() *Batch {
	b := &Batch{Topic: "in"}
	for i := 0; i < 1000; i++ {
		b.Records = append(b.Records, batch.Record{Offset: int64(i), Timestamp: 1700000000000 + int64(i),
			Key: []byte(fmt.Sprintf("key-%012d", i)), Value: bytes.Repeat([]byte{'v'}, 100)})
	}
	return b
}

func reportPerRecord(b *testing.B, records int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(records), "ns/record")
	b.ReportMetric(float64(b.N)*float64(records)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkGuest is the cost of one batch through a module, per record:
// encode into guest memory, the guest's decode + handler + encode, copy
// out, decode the results.
func BenchmarkGuest(b *testing.B) {
	in := benchBatch()
	for _, mode := range []string{"filter", "route", "map", "process"} {
		b.Run(mode, func(b *testing.B) {
			p := newPool(b, "testdata/bench", PoolConfig{Env: map[string]string{"MODE": mode, "ROUTE_TO": "out"}})
			var res Results
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Process(context.Background(), in, &res); err != nil {
					b.Fatal(err)
				}
			}
			reportPerRecord(b, len(in.Records))
		})
	}
	b.Run("native", func(b *testing.B) {
		p := Native(func(in *batch.Record, out *Emitter) error {
			out.Write(Output{Partition: -1, Record: *in})
			return nil
		})
		var res Results
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Process(context.Background(), in, &res); err != nil {
				b.Fatal(err)
			}
		}
		reportPerRecord(b, len(in.Records))
	})
}

// BenchmarkDeadline is what a per-batch deadline costs: the map function
// with wisp's back-edge instrumentation (the default), with wazero's
// WithCloseOnContextDone, and with no way to interrupt it.
func BenchmarkDeadline(b *testing.B) {
	in := benchBatch()
	bin := wasmtest.Build(b, "testdata/bench")
	for _, mode := range []struct {
		name string
		mode deadlineMode
	}{{"instrument", deadlineInstrument}, {"wazero", deadlineWazero}, {"none", deadlineNone}} {
		b.Run(mode.name, func(b *testing.B) {
			ctx := context.Background()
			rt, err := NewRuntime(ctx, Config{deadlines: mode.mode})
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Close(ctx)
			mod, err := rt.Compile(ctx, bin)
			if err != nil {
				b.Fatal(err)
			}
			p, err := mod.NewPool(ctx, PoolConfig{Env: map[string]string{"MODE": "map"}})
			if err != nil {
				b.Fatal(err)
			}
			var res Results
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Process(ctx, in, &res); err != nil {
					b.Fatal(err)
				}
			}
			reportPerRecord(b, len(in.Records))
		})
	}
}

// BenchmarkDeploy is compile + first instance (what a deploy waits for),
// with an empty compilation cache and with a warm one (a restart).
func BenchmarkDeploy(b *testing.B) {
	bin := wasmtest.Build(b, "testdata/bench")
	ctx := context.Background()
	deploy := func(b *testing.B, dir string) {
		rt, err := NewRuntime(ctx, Config{CacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		defer rt.Close(ctx)
		mod, err := rt.Compile(ctx, bin)
		if err != nil {
			b.Fatal(err)
		}
		p, err := mod.NewPool(ctx, PoolConfig{})
		if err != nil {
			b.Fatal(err)
		}
		p.Close(ctx)
	}
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			deploy(b, b.TempDir())
		}
	})
	b.Run("cached", func(b *testing.B) {
		dir := b.TempDir()
		deploy(b, dir)
		for b.Loop() {
			deploy(b, dir)
		}
	})
	b.Run("instantiate", func(b *testing.B) {
		p := newPool(b, "testdata/bench", PoolConfig{})
		start := time.Now()
		for b.Loop() {
			inst, err := p.instantiate(ctx)
			if err != nil {
				b.Fatal(err)
			}
			inst.mod.Close(ctx)
		}
		_ = start
	})
}
