package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// testConfig allows short session timeouts; WISP_TEST_LOG=1 shows the logs.
func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.MinSessionTimeout = time.Millisecond
	if os.Getenv("WISP_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

func openT(t *testing.T, cfg Config) *Coordinator {
	t.Helper()
	c, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// checkFor polls f until it returns nil or the deadline passes.
func checkFor(t *testing.T, total, every time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %v", total, err)
		}
		time.Sleep(every)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantKerr(t *testing.T, err error, want *kerr.Error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %s", err, want.Message)
	}
}

func joinReq(group, memberID string, meta string, protocols ...string) JoinRequest {
	if len(protocols) == 0 {
		protocols = []string{"range"}
	}
	r := JoinRequest{
		Group: group, MemberID: memberID, ClientID: "c", ClientHost: "/127.0.0.1", ProtocolType: "consumer",
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 5 * time.Second,
	}
	for _, p := range protocols {
		r.Protocols = append(r.Protocols, Protocol{Name: p, Metadata: []byte(meta)})
	}
	return r
}

type joinOut struct {
	resp JoinResponse
	err  error
}

// joinAsync starts a Join and returns where its answer arrives.
func joinAsync(ctx context.Context, c *Coordinator, req JoinRequest) <-chan joinOut {
	ch := make(chan joinOut, 1)
	go func() {
		resp, err := c.Join(ctx, req)
		ch <- joinOut{resp, err}
	}()
	return ch
}

func recvJoin(t *testing.T, ch <-chan joinOut) JoinResponse {
	t.Helper()
	select {
	case out := <-ch:
		if out.err != nil {
			t.Fatalf("join: %v", out.err)
		}
		return out.resp
	case <-time.After(10 * time.Second):
		t.Fatal("join did not return")
	}
	return JoinResponse{}
}

func join(t *testing.T, c *Coordinator, req JoinRequest) JoinResponse {
	t.Helper()
	return recvJoin(t, joinAsync(ctxT(t), c, req))
}

type syncOut struct {
	assignment []byte
	err        error
}

func syncAsync(ctx context.Context, c *Coordinator, req SyncRequest) <-chan syncOut {
	ch := make(chan syncOut, 1)
	go func() {
		a, err := c.Sync(ctx, req)
		ch <- syncOut{a, err}
	}()
	return ch
}

func recvSync(t *testing.T, ch <-chan syncOut) ([]byte, error) {
	t.Helper()
	select {
	case out := <-ch:
		return out.assignment, out.err
	case <-time.After(10 * time.Second):
		t.Fatal("sync did not return")
	}
	return nil, nil
}

// assignAll is a leader's assignment: "a:<member id>" for every member.
func assignAll(members []Member) map[string][]byte {
	out := map[string][]byte{}
	for _, m := range members {
		out[m.MemberID] = []byte("a:" + m.MemberID)
	}
	return out
}

func memberIDs(ms []Member) []string {
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.MemberID)
	}
	return ids
}

func describe(t *testing.T, c *Coordinator, group string) GroupDescription {
	t.Helper()
	d, err := c.DescribeGroup(group)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	return d
}

func wantState(c *Coordinator, group, state string) func() error {
	return func() error {
		d, err := c.DescribeGroup(group)
		if err != nil {
			return err
		}
		if d.State != state {
			return fmt.Errorf("state %s, want %s", d.State, state)
		}
		return nil
	}
}
