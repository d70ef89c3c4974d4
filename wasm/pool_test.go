package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wispbus/wisp/internal/batch"
	"github.com/wispbus/wisp/wasm/wasmtest"
)

// testRuntime is shared by the tests of this package: compiling a Go module
// takes about a second, so each distinct module is compiled once.
var (
	rtOnce  sync.Once
	rtShare *Runtime
	rtErr   error
)

func runtimeForTest(t testing.TB) *Runtime {
	t.Helper()
	rtOnce.Do(func() {
		rtShare, rtErr = NewRuntime(context.Background(), Config{CacheDir: wasmtest.CacheDir(t)})
	})
	if rtErr != nil {
		t.Fatal(rtErr)
	}
	return rtShare
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newPool(t testing.TB, pkg string, cfg PoolConfig) *Pool {
	t.Helper()
	ctx := context.Background()
	mod, err := runtimeForTest(t).Compile(ctx, wasmtest.Build(t, pkg))
	if err != nil {
		t.Fatal(err)
	}
	p, err := mod.NewPool(ctx, cfg)
	if err != nil {
		mod.Close(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close(ctx)
		mod.Close(ctx)
	})
	return p
}

func values(vals ...string) *Batch {
	b := &Batch{Topic: "in", Partition: 2}
	for i, v := range vals {
		b.Records = append(b.Records, batch.Record{Offset: int64(100 + i), Timestamp: 1000 + int64(i), Value: []byte(v)})
	}
	return b
}

func TestPoolProcess(t *testing.T) {
	p := newPool(t, "testdata/bench", PoolConfig{Env: map[string]string{"MODE": "process"}})
	in := &Batch{Topic: "in", Partition: 1, Records: []batch.Record{
		{Offset: 7, Timestamp: 1234, Key: []byte("k"), Value: []byte("v"),
			Headers: []batch.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "null"}}},
		{Offset: 8, Timestamp: 1235, Key: nil, Value: nil},
		{Offset: 9, Timestamp: 1236, Key: []byte{}, Value: []byte{}},
	}}
	var res Results
	for round := 0; round < 3; round++ { // instances are reused
		if err := p.Process(context.Background(), in, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Records) != 3 {
			t.Fatalf("%d results", len(res.Records))
		}
		for i, r := range res.Records {
			if r.Err != "" || len(r.Outputs) != 1 {
				t.Fatalf("record %d: %+v", i, r)
			}
			o := r.Outputs[0]
			want := in.Records[i]
			if o.Topic != "" || o.Partition != -1 || o.Forward || o.Record.Timestamp != want.Timestamp ||
				!sameBytes(o.Record.Key, want.Key) || !sameBytes(o.Record.Value, want.Value) ||
				len(o.Record.Headers) != len(want.Headers) {
				t.Fatalf("record %d: got %+v, want %+v", i, o.Record, want)
			}
			for j, h := range want.Headers {
				if g := o.Record.Headers[j]; g.Key != h.Key || !sameBytes(g.Value, h.Value) {
					t.Fatalf("record %d header %d: %+v", i, j, g)
				}
			}
		}
	}
	if s := p.Stats(); s.Created != 1 || s.Discarded != 0 || s.Idle != 1 {
		t.Errorf("stats %+v", s)
	}
}

// sameBytes compares contents and null-ness.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func TestPoolForward(t *testing.T) {
	p := newPool(t, "testdata/bench", PoolConfig{Env: map[string]string{"MODE": "route", "ROUTE_TO": "elsewhere"}})
	in := values("a", "b")
	var res Results
	if err := p.Process(context.Background(), in, &res); err != nil {
		t.Fatal(err)
	}
	for i, r := range res.Records {
		if len(r.Outputs) != 1 || !r.Outputs[0].Forward || r.Outputs[0].Topic != "elsewhere" ||
			string(r.Outputs[0].Record.Value) != string(in.Records[i].Value) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
}

func TestRejectedModules(t *testing.T) {
	ctx := context.Background()
	rt := runtimeForTest(t)
	tests := []struct {
		name string
		bin  func() []byte
		want string
	}{
		{"garbage", func() []byte { return []byte("not wasm at all") }, "not a WebAssembly binary"},
		{"truncated", func() []byte { return wasmtest.Build(t, "testdata/bench")[:1000] }, "does not compile"},
		{"no exports", func() []byte { return wasmtest.Build(t, "testdata/noexports") }, "missing the wisp ABI export(s) wisp_abi_version, wisp_buffer, wisp_process"},
		{"command", func() []byte { return wasmtest.BuildCommand(t, "testdata/bench") }, "WASI command"},
		{"bad version", func() []byte { return wasmtest.Build(t, "testdata/badabi") }, "ABI version 99"},
		{"no handler", func() []byte { return wasmtest.Build(t, "testdata/nohandler") }, "registered no handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mod, err := rt.Compile(ctx, tt.bin())
			if err == nil {
				var p *Pool
				p, err = mod.NewPool(ctx, PoolConfig{})
				if err == nil {
					p.Close(ctx)
				}
				mod.Close(ctx)
			}
			if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want ErrInvalidModule containing %q", err, tt.want)
			}
		})
	}
	t.Run("memory below minimum", func(t *testing.T) {
		mod, err := rt.Compile(ctx, wasmtest.Build(t, "testdata/bench"))
		if err != nil {
			t.Fatal(err)
		}
		defer mod.Close(ctx)
		_, err = mod.NewPool(ctx, PoolConfig{MemoryLimit: 1 << 20})
		if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), "over its limit of 1 MiB") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestSandbox(t *testing.T) {
	var stdout, stderr syncBuffer
	p := newPool(t, "testdata/evil", PoolConfig{
		Name: "evil-fn", Env: map[string]string{"GREETING": "hi"},
		MemoryLimit: 16 << 20, Timeout: 2 * time.Second, MaxInstances: 2,
		Stdout: &stdout, Stderr: &stderr,
	})
	ctx := context.Background()
	var res Results
	failures := []struct {
		value string
		want  error
		msg   string
	}{
		{"loop", ErrTimeout, "after 2s"},
		{"bomb", ErrMemoryLimit, "16 MiB"},
		{"trap", ErrTrap, "out of bounds memory access"},
		{"exit", ErrExit, "code 3"},
	}
	for _, f := range failures {
		t.Run(f.value, func(t *testing.T) {
			before := p.Stats().Discarded
			start := time.Now()
			err := p.Process(ctx, values("ok", f.value, "ok"), &res)
			if !errors.Is(err, f.want) || !strings.Contains(err.Error(), f.msg) || !IsModuleFailure(err) {
				t.Fatalf("err = %v; want %v containing %q", err, f.want, f.msg)
			}
			if f.want == ErrTimeout && time.Since(start) > 4*time.Second {
				t.Errorf("timeout took %v", time.Since(start))
			}
			if p.Stats().Discarded != before+1 {
				t.Errorf("instance not discarded: %+v", p.Stats())
			}
			// The pool recovers with a fresh instance.
			if err := p.Process(ctx, values("fine"), &res); err != nil || string(res.Records[0].Outputs[0].Record.Value) != "fine" {
				t.Fatalf("after %s: %v %+v", f.value, err, res.Records)
			}
		})
	}

	t.Run("per-record errors", func(t *testing.T) {
		if err := p.Process(ctx, values("a", "panic", "error", "b"), &res); err != nil {
			t.Fatal(err)
		}
		r := res.Records
		if r[0].Err != "" || len(r[0].Outputs) != 1 || !strings.Contains(r[1].Err, "panic: assignment to entry in nil map") ||
			r[2].Err != "record refused" || len(r[3].Outputs) != 1 {
			t.Fatalf("results %+v", r)
		}
	})
	t.Run("huge output", func(t *testing.T) {
		if err := p.Process(ctx, values("huge"), &res); err != nil {
			t.Fatal(err)
		}
		if n := len(res.Records[0].Outputs[0].Record.Value); n != 3<<20 {
			t.Fatalf("value of %d bytes", n)
		}
	})
	t.Run("environment", func(t *testing.T) {
		in := values("env", "env", "env")
		in.Records[0].Key, in.Records[1].Key, in.Records[2].Key = []byte("GREETING"), []byte("HOME"), []byte("PATH")
		if err := p.Process(ctx, in, &res); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range res.Records {
			got = append(got, string(r.Outputs[0].Record.Value))
		}
		if strings.Join(got, ",") != "hi true, false, false" {
			t.Fatalf("environment seen by the module: %q", got)
		}
	})
	t.Run("no filesystem", func(t *testing.T) {
		if err := p.Process(ctx, values("fs"), &res); err != nil {
			t.Fatal(err)
		}
		if v := string(res.Records[0].Outputs[0].Record.Value); v == "<nil>" {
			t.Fatal("the module read a host file")
		}
	})
	t.Run("clock", func(t *testing.T) {
		if err := p.Process(ctx, values("time"), &res); err != nil {
			t.Fatal(err)
		}
		ms, _ := strconv.ParseInt(string(res.Records[0].Outputs[0].Record.Value), 10, 64)
		if d := time.Since(time.UnixMilli(ms)); d < -time.Second || d > 5*time.Second {
			t.Fatalf("module clock off by %v", d)
		}
	})
	t.Run("logs", func(t *testing.T) {
		if err := p.Process(ctx, values("log"), &res); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stdout.String(), "hello from evil-fn\n") || !strings.Contains(stderr.String(), "to stderr\n") {
			t.Fatalf("stdout %q stderr %q", stdout.String(), stderr.String())
		}
	})
	t.Run("canceled is not a module failure", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		go func() { time.Sleep(50 * time.Millisecond); cancel() }()
		err := p.Process(cctx, values("loop"), &res)
		if !errors.Is(err, context.Canceled) || IsModuleFailure(err) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestPoolConcurrent(t *testing.T) {
	p := newPool(t, "testdata/bench", PoolConfig{Env: map[string]string{"MODE": "map"}, MaxInstances: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res Results
			for i := 0; i < 10; i++ {
				v := fmt.Sprintf("g%d-%d", g, i)
				if err := p.Process(context.Background(), values(v), &res); err != nil {
					errs <- err
					return
				}
				if got := string(res.Records[0].Outputs[0].Record.Value); got != v {
					errs <- fmt.Errorf("got %q want %q", got, v)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Live > 2 || s.Created > 2 {
		t.Fatalf("stats %+v: more than MaxInstances", s)
	}
}

func TestCompilationCache(t *testing.T) {
	if raceEnabled {
		t.Skip("a fresh compilation takes ~15s under the race detector")
	}
	ctx := context.Background()
	bin := wasmtest.Build(t, "testdata/bench")
	dir := t.TempDir()
	compile := func() time.Duration {
		rt, err := NewRuntime(ctx, Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer rt.Close(ctx)
		start := time.Now()
		mod, err := rt.Compile(ctx, bin)
		if err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		again, err := rt.Compile(ctx, bin)
		if err != nil || again != mod {
			t.Fatalf("second Compile of the same bytes: %v, same module %v", err, again == mod)
		}
		return d
	}
	fresh, cached := compile(), compile()
	entries, _ := os.ReadDir(dir)
	if len(entries) == 0 {
		t.Fatal("nothing in the cache dir")
	}
	t.Logf("compile fresh %v, from the cache %v", fresh, cached)
	if cached > fresh/2 {
		t.Errorf("cached compile %v is not much faster than fresh %v", cached, fresh)
	}
}
