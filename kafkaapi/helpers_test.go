package kafkaapi

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wispbus/wisp/bus"
)

// testServer is a broker on a temporary directory with a Kafka listener on
// a free loopback port.
type testServer struct {
	dir  string
	bcfg bus.Config
	b    *bus.Broker
	s    *Server
	addr string
}

// testLogger logs warnings and errors to the test log, debug with -v and
// WISP_TEST_DEBUG=1.
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("WISP_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startServer(t testing.TB, opts ...func(*bus.Config)) *testServer {
	t.Helper()
	bcfg := bus.DefaultConfig()
	bcfg.DataDir = t.TempDir()
	bcfg.Logger = testLogger(t)
	for _, o := range opts {
		o(&bcfg)
	}
	ts := &testServer{dir: bcfg.DataDir, bcfg: bcfg}
	ts.open(t, "127.0.0.1:0")
	t.Cleanup(func() { ts.close(t) })
	return ts
}

func (ts *testServer) open(t testing.TB, addr string) {
	t.Helper()
	b, err := bus.Open(ts.bcfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Addr = addr
	cfg.Logger = ts.bcfg.Logger
	s, err := New(cfg, b)
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Close()
		t.Fatal(err)
	}
	ts.b, ts.s, ts.addr = b, s, s.Addr().String()
}

func (ts *testServer) close(t testing.TB) {
	t.Helper()
	if ts.s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.s.Close(ctx); err != nil {
		t.Errorf("kafkaapi Close: %v", err)
	}
	if err := ts.b.Close(); err != nil {
		t.Errorf("bus Close: %v", err)
	}
	ts.s, ts.b = nil, nil
}

// restart closes the listener and the broker and opens both again on the
// same data directory and port.
func (ts *testServer) restart(t testing.TB) {
	t.Helper()
	addr := ts.addr
	ts.close(t)
	ts.open(t, addr)
}

func (ts *testServer) client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(ts.addr), kgo.WithLogger(kgoLogger{t})}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// kgoLogger shows the client's warnings and errors in the test log.
type kgoLogger struct{ t testing.TB }

func (l kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }
func (l kgoLogger) Log(level kgo.LogLevel, msg string, kv ...any) {
	l.t.Helper()
	l.t.Logf("kgo %s: %s %v", level, msg, kv)
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// checkFor polls cond until it holds or the deadline passes.
func checkFor(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// needTool finds an external tool for the interoperability tests. Without
// it the test skips loudly, or fails when CI is set: CI installs every
// tool (scripts/test-deps.sh).
func needTool(t testing.TB, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	msg := "MISSING TOOL " + strings.Join(candidates, " or ") + ": install it (scripts/test-deps.sh, or apt-get install kcat python3-kafka); this interoperability test did NOT run"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
