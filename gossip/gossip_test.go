package gossip

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"
)

func testLogger() *slog.Logger {
	if os.Getenv("WISP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) on(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) has(t EventType, id int32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Type == t && e.Member.ID == id {
			return true
		}
	}
	return false
}

func start(t *testing.T, id int32, join []string, key []byte, rec *recorder) *Gossip {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeID = id
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Join = join
	cfg.Key = key
	cfg.Meta = Meta{QUIC: "127.0.0.1:70" + string(rune('0'+id)) + "0", Rack: "r" + string(rune('0'+id))}
	cfg.Logger = testLogger()
	if rec != nil {
		cfg.OnEvent = rec.on
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

func ids(ms []Member) []int32 {
	var out []int32
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func TestMembershipJoinFailLeaveUpdate(t *testing.T) {
	rec := &recorder{}
	g1 := start(t, 1, nil, nil, rec)
	g2 := start(t, 2, []string{g1.LocalAddr()}, nil, nil)
	g3 := start(t, 3, []string{g2.LocalAddr()}, nil, nil)

	for _, g := range []*Gossip{g1, g2, g3} {
		waitFor(t, 10*time.Second, "3 members", func() bool { return len(g.Members()) == 3 })
	}
	ms := g1.Members()
	if got := ids(ms); got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("members %v", got)
	}
	if ms[2].QUIC != "127.0.0.1:7030" || ms[2].Rack != "r3" || ms[2].State != StateAlive {
		t.Fatalf("member 3 = %+v", ms[2])
	}
	// OnEvent runs on the dispatcher goroutine, after Members changed.
	waitFor(t, 10*time.Second, "join events", func() bool { return rec.has(EventJoin, 2) && rec.has(EventJoin, 3) })
	if !g3.Joined() || !g1.Joined() {
		t.Fatal("Joined is false")
	}

	// Metadata update.
	m := g2.Meta()
	m.Raft = true
	if err := g2.SetMeta(m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "update of node 2", func() bool {
		for _, m := range g1.Members() {
			if m.ID == 2 && m.Raft {
				return true
			}
		}
		return false
	})
	waitFor(t, 10*time.Second, "update event", func() bool { return rec.has(EventUpdate, 2) })

	// Failure: node 3 stops without leaving.
	if err := g3.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "node 3 declared dead", func() bool { return rec.has(EventFail, 3) })
	if got := ids(g1.Members()); len(got) != 2 {
		t.Fatalf("members after failure %v", got)
	}
	var st State = 99
	for _, m := range g1.Known() {
		if m.ID == 3 {
			st = m.State
		}
	}
	if st != StateDead {
		t.Fatalf("known state of 3 = %v", st)
	}

	// Graceful leave of node 2.
	if err := g2.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := g2.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "node 2 left", func() bool { return rec.has(EventLeave, 2) })
	if rec.has(EventFail, 2) {
		t.Fatal("node 2 reported failed, not left")
	}
}

func TestKeyRequired(t *testing.T) {
	key := []byte("0123456789abcdef")
	g1 := start(t, 1, nil, key, nil)
	g2 := start(t, 2, nil, key, nil)
	if _, err := g2.Join([]string{g1.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "2 members", func() bool { return len(g1.Members()) == 2 })

	stranger := start(t, 3, nil, nil, nil)
	if _, err := stranger.Join([]string{g1.LocalAddr()}); err == nil {
		t.Fatal("a node without the key joined")
	}
	wrong := start(t, 4, nil, []byte("fedcba9876543210"), nil)
	if _, err := wrong.Join([]string{g1.LocalAddr()}); err == nil {
		t.Fatal("a node with another key joined")
	}
	if n := len(g1.Members()); n != 2 {
		t.Fatalf("%d members", n)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"zero id", func(c *Config) { c.NodeID = 0 }, false},
		{"bad bind", func(c *Config) { c.BindAddr = "nope" }, false},
		{"bad join", func(c *Config) { c.Join = []string{"x"} }, false},
		{"key 16", func(c *Config) { c.Key = make([]byte, 16) }, true},
		{"key 10", func(c *Config) { c.Key = make([]byte, 10) }, false},
		{"probe timeout", func(c *Config) { c.ProbeTimeout = c.ProbeInterval }, false},
		{"meta id", func(c *Config) { c.Meta.ID = 9 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v", err)
			}
		})
	}
}

func TestMetaTooLarge(t *testing.T) {
	g := start(t, 1, nil, nil, nil)
	big := make([]byte, 600)
	for i := range big {
		big[i] = 'x'
	}
	if err := g.SetMeta(Meta{Rack: string(big)}); err == nil {
		t.Fatal("oversized metadata accepted")
	}
}
