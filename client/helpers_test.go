package client

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/transport"
)

// testNode is an in-process broker with a QUIC server on 127.0.0.1:0.
type testNode struct {
	dir    string
	broker *bus.Broker
	srv    *transport.Server
	addr   string
}

func quietLogger() *slog.Logger {
	if os.Getenv("WISP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startNode starts a node with topic defaults (e.g. flush=os) on a fresh
// data directory.
func startNode(t testing.TB, defaults map[string]string) *testNode {
	t.Helper()
	dir := t.TempDir()
	return startNodeAt(t, dir, defaults)
}

func startNodeAt(t testing.TB, dir string, defaults map[string]string) *testNode {
	t.Helper()
	return startNodeAddr(t, dir, "127.0.0.1:0", defaults)
}

func startNodeAddr(t testing.TB, dir, addr string, defaults map[string]string) *testNode {
	t.Helper()
	bcfg := bus.DefaultConfig()
	bcfg.DataDir = dir
	bcfg.TopicDefaults = defaults
	bcfg.Logger = quietLogger()
	b, err := bus.Open(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	tcfg := transport.DefaultConfig()
	tcfg.Addr = addr
	tcfg.DataDir = dir
	tcfg.Logger = quietLogger()
	srv, err := transport.NewServer(tcfg, b)
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Close()
		t.Fatal(err)
	}
	n := &testNode{dir: dir, broker: b, srv: srv, addr: srv.Addr().String()}
	t.Cleanup(func() { n.stop(t) })
	return n
}

func (n *testNode) stop(t testing.TB) {
	if n.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.srv.Close(ctx); err != nil {
		t.Errorf("server close: %v", err)
	}
	if err := n.broker.Close(); err != nil {
		t.Errorf("broker close: %v", err)
	}
	n.srv = nil
}

func (n *testNode) client(t testing.TB, opts ...Opt) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, append([]Opt{Servers(n.addr), Logger(quietLogger())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// checkFor polls cond until it holds or d passes.
func checkFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
