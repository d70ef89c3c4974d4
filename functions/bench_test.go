package functions

import (
	"bytes"
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/batch"
	"github.com/wispbus/wisp/wasm"
	"github.com/wispbus/wisp/wasm/wasmtest"
)

const benchRecords = 200_000

// fillInput writes benchRecords records of 100-byte values (16-byte keys)
// to partition 0 of topic, in batches of 1000.
func fillInput(b *testing.B, n *node, topic string) {
	n.createTopic(topic, 1)
	value := bytes.Repeat([]byte{'v'}, 100)
	for i := 0; i < benchRecords; i += 1000 {
		recs := make([]batch.Record, 1000)
		for j := range recs {
			recs[j] = batch.Record{Key: fmt.Appendf(nil, "key-%012d", i+j), Value: value}
		}
		raw, err := batch.Build(batch.NoProducer, recs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := n.b.Produce(context.Background(), topic, 0, raw, bus.AcksAll); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPipeline is a function's throughput, input topic to output
// topic through the bus, for 100-byte records: each iteration (re)deploys
// the function at the start of a 200,000-record input and waits until it
// has committed all of it. "native" is the same pipeline with a Go
// pass-through in place of the module: the ceiling the module is measured
// against.
func BenchmarkPipeline(b *testing.B) {
	type variant struct {
		name   string
		env    map[string]string
		native wasm.NativeFunc
	}
	passThrough := func(in *batch.Record, out *wasm.Emitter) error {
		out.Write(wasm.Output{Partition: -1, Record: *in})
		return nil
	}
	forward := func(in *batch.Record, out *wasm.Emitter) error {
		out.Forward("")
		return nil
	}
	for _, v := range []variant{
		{name: "native-map", native: passThrough},
		{name: "wasm-map", env: map[string]string{"MODE": "map"}},
		{name: "native-filter", native: forward},
		{name: "wasm-filter", env: map[string]string{"MODE": "filter"}},
		{name: "wasm-route", env: map[string]string{"MODE": "route", "ROUTE_TO": "out"}},
	} {
		b.Run(v.name, func(b *testing.B) {
			n := openNode(b, b.TempDir())
			fillInput(b, n, "in")
			man := Manifest{Name: "fn", Input: "in", Outputs: []string{"out"}, Start: "start", Env: v.env}
			bin := module(b, "testdata/bench")
			b.ReportAllocs()
			b.ResetTimer()
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				var err error
				if v.native != nil {
					_, err = n.m.DeployNative(context.Background(), man, v.native)
				} else {
					_, err = n.m.Deploy(context.Background(), man, bin)
				}
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				before := cpuTime()
				for {
					info, err := n.m.Info("fn")
					if err != nil {
						b.Fatal(err)
					}
					if info.Lag == 0 {
						break
					}
					time.Sleep(time.Millisecond)
				}
				cpu += cpuTime() - before
			}
			b.ReportMetric(float64(benchRecords)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			// CPU per record is steadier than wall time on a shared machine,
			// where fsync latency dominates the wall time of a pipeline.
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(benchRecords*b.N), "cpu-ns/record")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDeploy is the time from Deploy to running workers, with an
// empty compilation cache (a new module) and with a warm one (a module
// compiled before, e.g. before a restart: the runtime is new each time).
func BenchmarkDeploy(b *testing.B) {
	bin := wasmtest.Build(b, "testdata/bench")
	ctx := context.Background()
	deploy := func(b *testing.B, cacheDir string) {
		b.StopTimer()
		rt, err := wasm.NewRuntime(ctx, wasm.Config{CacheDir: cacheDir})
		if err != nil {
			b.Fatal(err)
		}
		n := openNode(b, b.TempDir(), func(c *Config) { c.Runtime = rt })
		n.createTopic("in", 1)
		b.StartTimer()
		if _, err := n.m.Deploy(ctx, Manifest{Name: "fn", Input: "in", Outputs: []string{"out"}}, bin); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		n.close()
		rt.Close(ctx)
		b.StartTimer()
	}
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			deploy(b, b.TempDir())
		}
	})
	b.Run("cached", func(b *testing.B) {
		dir := b.TempDir()
		deploy(b, dir)
		b.ResetTimer()
		for b.Loop() {
			deploy(b, dir)
		}
	})
}
