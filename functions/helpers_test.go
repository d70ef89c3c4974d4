package functions

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/batch"
	"github.com/wispbus/wisp/wasm"
	"github.com/wispbus/wisp/wasm/wasmtest"
)

// The tests share one runtime and compilation cache: compiling a Go module
// takes about a second (many more under -race), so each module is compiled
// once per test process and kept (shared.keep holds a reference).
var shared struct {
	once sync.Once
	rt   *wasm.Runtime
	err  error
	mu   sync.Mutex
	keep map[string]*wasm.Module
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	code := m.Run()
	if shared.rt != nil {
		shared.rt.Close(context.Background())
	}
	os.Exit(code)
}

func sharedRuntime(t testing.TB) *wasm.Runtime {
	t.Helper()
	shared.once.Do(func() {
		shared.rt, shared.err = wasm.NewRuntime(context.Background(), wasm.Config{CacheDir: wasmtest.CacheDir(t)})
		shared.keep = map[string]*wasm.Module{}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.rt
}

// module builds pkg (relative to sdk-wasm) and compiles it into the shared
// runtime once.
func module(t testing.TB, pkg string) []byte {
	t.Helper()
	bin := wasmtest.Build(t, pkg)
	rt := sharedRuntime(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.keep[pkg] == nil {
		mod, err := rt.Compile(context.Background(), bin)
		if err == nil {
			shared.keep[pkg] = mod
		}
	}
	return bin
}

// node is a broker and a function manager on one data directory.
type node struct {
	t   testing.TB
	dir string
	b   *bus.Broker
	m   *Manager
}

func testConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.DataDir = dir + "/functions"
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.ScanInterval = 100 * time.Millisecond
	cfg.RetryBackoff = 10 * time.Millisecond
	cfg.MaxBackoff = 100 * time.Millisecond
	cfg.IdlePoll = 100 * time.Millisecond
	return cfg
}

func openNode(t testing.TB, dir string, tweak ...func(*Config)) *node {
	t.Helper()
	bcfg := bus.DefaultConfig()
	bcfg.DataDir = dir
	bcfg.Logger = slog.New(slog.DiscardHandler)
	b, err := bus.Open(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dir)
	cfg.Runtime = sharedRuntime(t)
	for _, f := range tweak {
		f(&cfg)
	}
	m, err := Open(cfg, b)
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	n := &node{t: t, dir: dir, b: b, m: m}
	t.Cleanup(n.close)
	return n
}

func (n *node) close() {
	if n.m != nil {
		if err := n.m.Close(); err != nil {
			n.t.Errorf("manager close: %v", err)
		}
		n.m = nil
	}
	if n.b != nil {
		if err := n.b.Close(); err != nil {
			n.t.Errorf("broker close: %v", err)
		}
		n.b = nil
	}
}

func (n *node) createTopic(name string, partitions int32) {
	n.t.Helper()
	if _, err := n.b.CreateTopic(context.Background(), bus.TopicSpec{Name: name, Partitions: partitions}); err != nil {
		n.t.Fatal(err)
	}
}

// produce writes records with the given values (and keys, when given as
// "key=value") to one partition.
func (n *node) produce(topic string, partition int32, values ...string) {
	n.t.Helper()
	var recs []batch.Record
	for _, v := range values {
		r := batch.Record{Value: []byte(v)}
		if k, val, ok := strings.Cut(v, "="); ok && !strings.HasPrefix(v, "{") {
			r.Key, r.Value = []byte(k), []byte(val)
		}
		recs = append(recs, r)
	}
	raw, err := batch.Build(batch.NoProducer, recs)
	if err != nil {
		n.t.Fatal(err)
	}
	if _, err := n.b.Produce(context.Background(), topic, partition, raw, bus.AcksAll); err != nil {
		n.t.Fatal(err)
	}
}

type rec struct {
	partition int32
	batch.Record
}

// consume reads every record of a topic, partition by partition.
func (n *node) consume(topic string) []rec {
	n.t.Helper()
	info, err := n.b.Topic(topic)
	if err != nil {
		n.t.Fatal(err)
	}
	var out []rec
	for _, p := range info.Partitions {
		off := p.LogStartOffset
		for off < p.HighWatermark {
			res, err := n.b.Fetch(context.Background(), topic, p.Partition, off, 1<<20)
			if err != nil {
				n.t.Fatal(err)
			}
			if len(res.Batches) == 0 {
				break
			}
			err = batch.Each(res.Batches, func(h batch.Header, b []byte) error {
				recs, err := batch.Records(b)
				for _, r := range recs {
					if r.Offset >= off {
						out = append(out, rec{p.Partition, r})
					}
				}
				off = max(off, h.NextOffset())
				return err
			})
			if err != nil {
				n.t.Fatal(err)
			}
		}
	}
	return out
}

func values(rs []rec) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Value)
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func header(r batch.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCaughtUp waits until the function has committed all of its input.
func (n *node) waitCaughtUp(name string) Info {
	n.t.Helper()
	var info Info
	waitFor(n.t, 60*time.Second, name+" to catch up", func() bool {
		var err error
		info, err = n.m.Info(name)
		if err != nil {
			n.t.Fatal(err)
		}
		if info.State == StateFailed {
			n.t.Fatalf("%s failed: %s", name, info.Error)
		}
		return info.Lag == 0 && info.State == StateRunning
	})
	return info
}

func (n *node) deploy(man Manifest, pkg string) Info {
	n.t.Helper()
	info, err := n.m.Deploy(context.Background(), man, module(n.t, pkg))
	if err != nil {
		n.t.Fatalf("deploy %s: %v", man.Name, err)
	}
	return info
}

func seq(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return out
}
