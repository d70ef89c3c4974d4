package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/functions"
	"github.com/wispbus/wisp/transport"
	"github.com/wispbus/wisp/wasm"
	"github.com/wispbus/wisp/wasm/wasmtest"
)

// startFnNode starts a node whose QUIC server serves the function APIs
// from a real functions.Manager (nil fns: functions disabled).
func startFnNode(t *testing.T, withFunctions bool) *testNode {
	t.Helper()
	n := startNode(t, map[string]string{"flush": "os"})
	if !withFunctions {
		return n
	}
	ctx := context.Background()
	rt, err := wasm.NewRuntime(ctx, wasm.Config{CacheDir: wasmtest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := functions.DefaultConfig()
	cfg.DataDir = filepath.Join(n.dir, "functions")
	cfg.Runtime = rt
	cfg.Logger = quietLogger()
	m, err := functions.Open(cfg, n.broker)
	if err != nil {
		t.Fatal(err)
	}
	// Swap in a server with the manager on the same broker: the one
	// startNode made has none.
	ctxc, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := n.srv.Close(ctxc); err != nil {
		t.Fatal(err)
	}
	tcfg := transport.DefaultConfig()
	tcfg.Addr = "127.0.0.1:0"
	tcfg.DataDir = n.dir
	tcfg.Logger = quietLogger()
	tcfg.Functions = m
	srv, err := transport.NewServer(tcfg, n.broker)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	n.srv, n.addr = srv, srv.Addr().String()
	// Cleanups run last in, first out: this one stops the server and the
	// manager before n.stop (registered by startNode) closes the broker.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("server close: %v", err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("functions close: %v", err)
		}
		_ = rt.Close(context.Background())
	})
	return n
}

func fnClient(t *testing.T, n *testNode) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, Servers(n.addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestFnSpecJSON: a FunctionSpec encodes as the manifest JSON the server
// reads (docs/functions.md) and decodes back.
func TestFnSpecJSON(t *testing.T) {
	spec := FunctionSpec{Name: "f", Input: "in", Outputs: []string{"a", "b"}, DLQ: "d", Env: map[string]string{"K": "V"},
		MemoryMB: 32, Timeout: 1500 * time.Millisecond, Instances: 2, Retries: 1, MaxFailures: 3, Start: "@1700000000000"}
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var m functions.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := functions.Manifest{Name: "f", Input: "in", Outputs: []string{"a", "b"}, DLQ: "d", Env: map[string]string{"K": "V"},
		Limits: functions.Limits{MemoryMB: 32, Timeout: 1500 * time.Millisecond, Instances: 2, Retries: 1, MaxFailures: 3},
		Start:  "@1700000000000"}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("server reads %s as\n%+v, want\n%+v", b, m, want)
	}
	var back FunctionSpec
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, spec) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
}

// TestFnLifecycle deploys the filter example through the client, and
// lists, describes, reads the logs of (also following them), pauses,
// resumes and deletes it.
func TestFnLifecycle(t *testing.T) {
	module := wasmtest.Build(t, "examples/filter")
	n := startFnNode(t, true)
	c := fnClient(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	info, err := c.DeployFunction(ctx, FunctionSpec{Name: "keep", Input: "in", Outputs: []string{"out"},
		Env: map[string]string{"FIELD": "k", "MATCH": "yes"}, MemoryMB: 16, Timeout: time.Second, Start: "start"}, module)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "keep" || info.Version != 1 || info.State != "running" || info.Deployed.IsZero() || len(info.Module) != 64 {
		t.Fatalf("deploy: %+v", info)
	}

	// Follow the log from now on, in the background.
	fctx, stopFollow := context.WithCancel(ctx)
	var mu sync.Mutex
	var followed []string
	followDone := make(chan error, 1)
	go func() {
		followDone <- c.FollowFunctionLogs(fctx, "keep", time.Time{}, func(l FunctionLogLine) {
			mu.Lock()
			followed = append(followed, l.Stream+": "+l.Text)
			mu.Unlock()
		})
	}()

	var recs []*Record
	for i := range 10 {
		v := "no"
		if i%3 == 0 {
			v = "yes"
		}
		recs = append(recs, &Record{Topic: "in", Value: fmt.Appendf(nil, `{"k":%q,"i":%d}`, v, i)})
	}
	if err := c.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	var d FunctionDetail
	checkFor(t, 30*time.Second, "the function to read its 10 records", func() bool {
		if d, err = c.DescribeFunction(ctx, "keep"); err != nil {
			t.Fatal(err)
		}
		return d.RecordsIn == 10 && d.Lag == 0
	})
	if d.RecordsOut != 4 || d.Spec.MemoryMB != 16 || d.Spec.Timeout != time.Second || d.Spec.Env["MATCH"] != "yes" ||
		d.Group != "wisp.fn.keep" || len(d.Partitions) != 1 || d.Partitions[0].Committed != 10 || d.Instances.Live < 1 {
		t.Fatalf("describe: %+v", d)
	}
	list, err := c.ListFunctions(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "keep" || list[0].RecordsOut != 4 {
		t.Fatalf("list: %+v, %v", list, err)
	}

	if err := c.PauseFunction(ctx, "keep"); err != nil {
		t.Fatal(err)
	}
	if d, err := c.DescribeFunction(ctx, "keep"); err != nil || d.State != "paused" {
		t.Fatalf("after pause: %s, %v", d.State, err)
	}
	if err := c.ResumeFunction(ctx, "keep"); err != nil {
		t.Fatal(err)
	}
	lines, err := c.FunctionLogs(ctx, "keep", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, l := range lines {
		texts = append(texts, l.Stream+": "+l.Text)
	}
	for _, want := range []string{"wisp: paused (was running)", "wisp: running (was paused)"} {
		if !slices.Contains(texts, want) {
			t.Fatalf("logs lack %q: %q", want, texts)
		}
	}
	if later, err := c.FunctionLogs(ctx, "keep", time.Now().Add(time.Hour)); err != nil || len(later) != 0 {
		t.Fatalf("logs since an hour from now: %v, %v", later, err)
	}
	checkFor(t, 10*time.Second, "the follower to see the resume", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(followed, "wisp: running (was paused)")
	})
	// Each line once: the backlog and the live lines do not overlap.
	mu.Lock()
	for i, l := range followed {
		if slices.Contains(followed[i+1:], l) {
			t.Errorf("line %q followed twice: %q", l, followed)
		}
	}
	mu.Unlock()
	stopFollow()
	if err := <-followDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("follow after cancel: %v", err)
	}

	// A follower ends (nil) when the function is deleted. It is
	// subscribed once the backlog arrives.
	subscribed := make(chan struct{})
	var once sync.Once
	go func() {
		followDone <- c.FollowFunctionLogs(ctx, "keep", time.Time{}, func(FunctionLogLine) { once.Do(func() { close(subscribed) }) })
	}()
	select {
	case <-subscribed:
	case err := <-followDone:
		t.Fatalf("follow ended early: %v", err)
	}
	if err := c.DeleteFunction(ctx, "keep"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-followDone:
		if err != nil {
			t.Fatalf("follow of a deleted function: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("follow did not end on delete")
	}

	for name, call := range map[string]func() error{
		"describe": func() error { _, err := c.DescribeFunction(ctx, "keep"); return err },
		"pause":    func() error { return c.PauseFunction(ctx, "keep") },
		"resume":   func() error { return c.ResumeFunction(ctx, "keep") },
		"delete":   func() error { return c.DeleteFunction(ctx, "keep") },
		"logs":     func() error { _, err := c.FunctionLogs(ctx, "keep", time.Time{}); return err },
		"follow":   func() error { return c.FollowFunctionLogs(ctx, "keep", time.Time{}, func(FunctionLogLine) {}) },
	} {
		if err := call(); !errors.Is(err, kerr.ResourceNotFound) {
			t.Errorf("%s of a deleted function: %v", name, err)
		}
	}
}

// TestFnDeployRejected: a module that is not WebAssembly or lacks the ABI
// is INVALID_REQUEST, a bad spec INVALID_CONFIG, each with the reason.
func TestFnDeployRejected(t *testing.T) {
	n := startFnNode(t, true)
	c := fnClient(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	good := FunctionSpec{Name: "f", Input: "in", Outputs: []string{"out"}}
	noABI := wasmtest.Build(t, "testdata/noexports")
	for _, tc := range []struct {
		name   string
		spec   FunctionSpec
		module []byte
		want   *kerr.Error
		says   string
	}{
		{"garbage", good, []byte("garbage"), kerr.InvalidRequest, "invalid module"},
		{"empty", good, nil, kerr.InvalidRequest, "empty"},
		{"no ABI", good, noABI, kerr.InvalidRequest, "invalid module"},
		{"output is input", FunctionSpec{Name: "f", Input: "in", Outputs: []string{"in"}}, noABI, kerr.InvalidConfig, "input topic"},
		{"bad name", FunctionSpec{Name: "a/b", Input: "in", Outputs: []string{"out"}}, noABI, kerr.InvalidConfig, "name"},
	} {
		_, err := c.DeployFunction(ctx, tc.spec, tc.module)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want %v saying %q", tc.name, err, tc.want, tc.says)
		}
	}
	if fns, err := c.ListFunctions(ctx); err != nil || len(fns) != 0 {
		t.Fatalf("after rejected deploys: %+v, %v", fns, err)
	}
}

// TestFnDisabled: a node without functions says so.
func TestFnDisabled(t *testing.T) {
	n := startFnNode(t, false)
	c := fnClient(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.ListFunctions(ctx)
	if err == nil || !strings.Contains(err.Error(), "functions are disabled") {
		t.Fatalf("list: %v", err)
	}
	if _, err := c.FunctionLogs(ctx, "f", time.Time{}); err == nil || !strings.Contains(err.Error(), "functions are disabled") {
		t.Fatalf("logs: %v", err)
	}
}
