package wasm

import (
	"context"
	"testing"

	"github.com/wispbus/wisp/wasm/wasmtest"
)

func BenchmarkTmp(b *testing.B) {
	in := benchBatch()
	bin := wasmtest.Build(b, "testdata/bench")
	ctx := context.Background()
	rt, _ := NewRuntime(ctx, Config{})
	defer rt.Close(ctx)
	mod, _ := rt.Compile(ctx, bin)
	for _, mode := range []string{"drop", "pdrop", "pconst", "pvalue", "pkv", "process", "map"} {
		b.Run(mode, func(b *testing.B) {
			p, err := mod.NewPool(ctx, PoolConfig{Env: map[string]string{"MODE": mode}})
			if err != nil {
				b.Fatal(err)
			}
			var res Results
			for b.Loop() {
				if err := p.Process(ctx, in, &res); err != nil {
					b.Fatal(err)
				}
			}
			reportPerRecord(b, len(in.Records))
		})
	}
}

func BenchmarkTmpHost(b *testing.B) {
	in := benchBatch()
	buf := make([]byte, InputSize(in))
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			EncodeInput(buf[:0], in)
		}
		reportPerRecord(b, 1000)
	})
	// an output forwarding each record
	out := newOutput(1000)
	for i := 0; i < 1000; i++ {
		out = out.u8(0).u32(1).u8(1).str("").u32(null)
	}
	var res Results
	b.Run("decode-forward", func(b *testing.B) {
		for b.Loop() {
			if err := DecodeOutput(out, in, &res); err != nil {
				b.Fatal(err)
			}
		}
		reportPerRecord(b, 1000)
	})
	out2 := newOutput(1000)
	for i := range in.Records {
		r := &in.Records[i]
		out2 = out2.u8(0).u32(1).u8(0).str("").u32(null).u64(uint64(r.Timestamp))
		out2 = output(appendBytes(appendBytes(out2, r.Key), r.Value)).u32(0)
	}
	b.Run("decode-map", func(b *testing.B) {
		for b.Loop() {
			if err := DecodeOutput(out2, in, &res); err != nil {
				b.Fatal(err)
			}
		}
		reportPerRecord(b, 1000)
	})
}
