package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/wispbus/wisp/client"
)

// fnRow is one path of the WASM comparison: records through a filter
// function, or the same records with no function (pass-through).
type fnRow struct {
	title, how string
	// e2e is the latency at the fixed rate fnRate; drain the rate at
	// which a backlog of fnBacklog records comes out.
	e2e, drain []run
	err        string
}

// fnRate is the fixed rate of the function latency rows: the light load
// of the end-to-end rows, where latency is the path itself.
const fnRate = e2eLight

// fnValue is the value of every record of the function rows: a JSON
// object whose "type" the filter compares (the stamp travels in a
// header, which the SDK's Filter keeps), 100 bytes in all.
func fnValue() []byte {
	v := []byte(`{"type":"wisp-bench","pad":"`)
	for len(v) < 98 {
		v = append(v, 'x')
	}
	return append(v, '"', '}')
}

const stampHeader = "wispbench-t"

// buildFilter builds sdk-wasm/examples/filter for wasip1 into dir, as
// `make wasm` does.
func buildFilter(ctx context.Context, dir string) ([]byte, error) {
	root, err := wispRoot()
	if err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "filter.wasm")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildmode=c-shared", "-o", out, "./examples/filter")
	cmd.Dir = filepath.Join(root, "sdk-wasm")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the filter example: %w\n%s", err, b)
	}
	return os.ReadFile(out)
}

// functions measures a WASM filter function (sdk-wasm/examples/filter,
// keeping every record, so both paths carry the same records) against
// pass-through, on flush=os topics of the single node: latency from
// producer to consumer at fnRate, and the rate at which a backlog comes
// out (the function's output filling, or a plain consumer reading it).
func (s *suite) functions(ctx context.Context, w *wispSys, binDir string) error {
	pass := &fnRow{title: "pass-through (no function)", how: "produce → topic → consumer"}
	filt := &fnRow{title: "WASM filter function", how: "produce → input → filter (sdk-wasm/examples/filter, keeps every record) → output → consumer"}
	s.rep.functions = []*fnRow{pass, filt}
	module, err := buildFilter(ctx, binDir)
	if err != nil {
		pass.err, filt.err = err.Error(), err.Error()
		logf("functions: %v", err)
		return ctx.Err()
	}
	in, err := w.topic(ctx, "fn-in", "os")
	if err != nil {
		return err
	}
	out, err := w.topic(ctx, "fn-out", "os")
	if err != nil {
		return err
	}
	passT, err := w.topic(ctx, "fn-pass", "os")
	if err != nil {
		return err
	}
	const name = "bench-filter"
	t0 := time.Now()
	if _, err := w.admin.DeployFunction(ctx, client.FunctionSpec{Name: name, Input: in, Outputs: []string{out},
		Env: map[string]string{"FIELD": "type", "MATCH": "wisp-bench"}}, module); err != nil {
		pass.err, filt.err = "deploy: "+err.Error(), "deploy: "+err.Error()
		logf("functions: deploy: %v", err)
		return ctx.Err()
	}
	logf("functions: filter deployed in %s", time.Since(t0).Round(time.Millisecond))
	defer func() {
		if err := w.admin.DeleteFunction(context.WithoutCancel(ctx), name); err != nil {
			logf("delete function: %v", err)
		}
	}()
	prod, err := w.producer(ctx, client.Linger(0))
	if err != nil {
		return err
	}
	defer prod.Close()
	cons, err := w.client(ctx)
	if err != nil {
		return err
	}
	defer cons.Close()

	// Latency at a fixed rate, the sides alternating as in measure.
	latency := func(produceTo, readFrom string) workload {
		return func(ctx context.Context, d time.Duration) (run, error) {
			return wispE2EHeader(ctx, prod, cons, produceTo, readFrom, fnRate, d)
		}
	}
	s.sides(ctx, fmt.Sprintf("function e2e at %s rec/s", human(fnRate)), w.server(), true, []*fnSide{
		{name: "pass", f: latency(passT, passT), runs: &pass.e2e, row: pass},
		{name: "filter", f: latency(in, out), runs: &filt.e2e, row: filt},
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// Backlog: fnBacklog records produced while nothing reads them (the
	// function paused), then the time until all have come out.
	backlog := s.fnBacklog()
	s.rep.fnBacklogN = backlog
	drainFn := func(ctx context.Context, _ time.Duration) (run, error) {
		if err := w.admin.PauseFunction(ctx, name); err != nil {
			return run{}, fmt.Errorf("pause: %w", err)
		}
		base, err := w.records(ctx, out)
		if err != nil {
			return run{}, err
		}
		if err := produceN(ctx, prod, in, backlog); err != nil {
			return run{}, err
		}
		start := time.Now()
		if err := w.admin.ResumeFunction(ctx, name); err != nil {
			return run{}, fmt.Errorf("resume: %w", err)
		}
		for {
			n, err := w.records(ctx, out)
			if err != nil {
				return run{}, err
			}
			if n-base >= backlog {
				el := time.Since(start)
				return run{records: backlog, bytes: backlog * 100, elapsed: el}, nil
			}
			select {
			case <-ctx.Done():
				return run{}, fmt.Errorf("%d of %d out: %w", n-base, backlog, ctx.Err())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	drainPass := func(ctx context.Context, _ time.Duration) (run, error) {
		// A fresh topic each time, read from its start like the function.
		t, err := w.topic(ctx, fmt.Sprintf("fn-pass-%d", time.Now().UnixNano()), "os")
		if err != nil {
			return run{}, err
		}
		defer func() { _ = w.admin.DeleteTopic(context.WithoutCancel(ctx), t) }()
		if err := produceN(ctx, prod, t, backlog); err != nil {
			return run{}, err
		}
		return wispConsume(ctx, cons, t, backlog, time.Minute)
	}
	s.sides(ctx, fmt.Sprintf("function backlog of %s records (no warm-up: the latency rows warmed the path)", human(float64(backlog))), w.server(), false, []*fnSide{
		{name: "pass", f: drainPass, runs: &pass.drain, row: pass},
		{name: "filter", f: drainFn, runs: &filt.drain, row: filt},
	})
	return ctx.Err()
}

// fnBacklog is the backlog of the function throughput rows: what wisp
// produces in about a second, read in well under the repetition.
func (s *suite) fnBacklog() int64 {
	if s.o.mode == "full" {
		return 1_000_000
	}
	return 200_000
}

// fnSide is one path of a wisp-only comparison.
type fnSide struct {
	name string
	f    workload
	runs *[]run
	row  *fnRow
	err  error
}

// sides is measure for wisp-only rows: a warm-up (unless warm is false:
// the rows before warmed the same path), then the repetitions, the order
// of the sides rotating.
func (s *suite) sides(ctx context.Context, title string, m cpuMeter, warm bool, ss []*fnSide) {
	if warm {
		logf("%s: warm-up", title)
		for _, sd := range ss {
			if _, err := call(ctx, sd.f, s.o.warm); err != nil {
				sd.err = fmt.Errorf("warm-up: %w", err)
			}
		}
	} else {
		logf("%s", title)
	}
	for i := range s.o.reps {
		for j := range ss {
			sd := ss[(i+j)%len(ss)]
			if sd.err != nil {
				continue
			}
			c0, s0 := m.cpu(), procCPU(os.Getpid())
			x, err := call(ctx, sd.f, s.o.dur)
			if err != nil {
				sd.err = err
				logf("  %-6s %v", sd.name, err)
				continue
			}
			x.cpu, x.clientCPU = m.cpu()-c0, procCPU(os.Getpid())-s0
			*sd.runs = append(*sd.runs, x)
			logf("  %-6s %s", sd.name, describe(x))
		}
	}
	for _, sd := range ss {
		if sd.err != nil {
			if sd.row.err != "" {
				sd.row.err += "; "
			}
			sd.row.err += sd.err.Error()
		}
	}
}

// produceN produces n records of fnValue to topic and waits for their
// acknowledgements.
func produceN(ctx context.Context, c *client.Client, topic string, n int64) error {
	val := fnValue()
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	for range n {
		c.Produce(ctx, &client.Record{Topic: topic, Value: val}, func(_ *client.Record, err error) {
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, &err)
			}
		})
	}
	if err := c.Flush(ctx); err != nil {
		return err
	}
	if p := firstErr.Load(); p != nil {
		return fmt.Errorf("%d records failed: %w", failed.Load(), *p)
	}
	return nil
}

// wispE2EHeader is wispE2E with the stamp in a header and fnValue as the
// value, produced to one topic and read from another (the same one for
// pass-through).
func wispE2EHeader(ctx context.Context, prod, cons *client.Client, produceTo, readFrom string, rate int, d time.Duration) (run, error) {
	k, err := cons.NewConsumer(ctx, client.Topics(readFrom), client.StartOffset(client.AtEnd()))
	if err != nil {
		return run{}, err
	}
	defer k.Close(ctx)
	var failed atomic.Int64
	promise := func(_ *client.Record, err error) {
		if err != nil {
			failed.Add(1)
		}
	}
	val := fnValue()
	send := func(v []byte) error {
		prod.Produce(ctx, &client.Record{Topic: produceTo, Value: val,
			Headers: []client.Header{{Key: stampHeader, Value: v[:16]}}}, promise)
		return nil
	}
	recv := func(rctx context.Context, each func([]byte)) error {
		for {
			recs, err := k.Poll(rctx)
			if err != nil {
				if rctx.Err() != nil {
					return nil
				}
				return err
			}
			for _, r := range recs {
				for _, h := range r.Headers {
					if h.Key == stampHeader {
						each(h.Value)
					}
				}
			}
		}
	}
	r, err := e2eRun(ctx, send, recv, rate, d)
	if n := failed.Load(); n > 0 && err == nil {
		err = fmt.Errorf("%d produces failed", n)
	}
	return r, err
}
