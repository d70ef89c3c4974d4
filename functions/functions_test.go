package functions

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wispbus/wisp/wasm"
)

// TestExamples runs each example of sdk-wasm/examples end to end on one
// node: deploy, produce, read the outputs back from the bus.
func TestExamples(t *testing.T) {
	n := openNode(t, t.TempDir())
	for _, topic := range []string{"ex-filter", "ex-transform", "ex-router", "ex-split"} {
		n.createTopic(topic, 2)
	}
	n.createTopic("words", 3)
	n.createTopic("clicks-only", 2)
	n.deploy(Manifest{Name: "filter", Input: "ex-filter", Outputs: []string{"clicks-only"}, Start: "start",
		Env: map[string]string{"FIELD": "type", "MATCH": "click"}}, "examples/filter")
	n.deploy(Manifest{Name: "transform", Input: "ex-transform", Outputs: []string{"redacted"}, Start: "start",
		Env: map[string]string{"FIELDS": "email, user.email"}}, "examples/transform")
	n.deploy(Manifest{Name: "router", Input: "ex-router", Outputs: []string{"clicks", "views", "other"}, Start: "start",
		Env: map[string]string{"FIELD": "type", "ROUTES": "click=clicks,view=views", "DEFAULT": "other"}}, "examples/router")
	n.deploy(Manifest{Name: "split", Input: "ex-split", Outputs: []string{"words"}, Start: "start"}, "examples/split")

	n.produce("ex-filter", 0, `{"type":"click","n":1}`, `{"type":"view","n":2}`, `not json`)
	n.produce("ex-filter", 1, `{"type":"click","n":3}`, `{"n":4}`)
	n.produce("ex-transform", 0, `{"email":"alice@example.com","n":1}`, `{"user":{"email":"bob@example.org"},"n":2}`, `{"n":3}`)
	n.produce("ex-router", 1, `{"type":"click","n":1}`, `{"type":"view","n":2}`, `{"type":"buy","n":3}`, `{"type":"click","n":4}`)
	n.produce("ex-split", 0, "The quick brown fox", "the lazy dog's fox")
	for _, name := range []string{"filter", "transform", "router", "split"} {
		n.waitCaughtUp(name)
	}

	t.Run("filter", func(t *testing.T) {
		got := sorted(values(n.consume("clicks-only")))
		if want := []string{`{"type":"click","n":1}`, `{"type":"click","n":3}`}; !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		// Unkeyed outputs keep their input partition.
		for _, r := range n.consume("clicks-only") {
			if want := map[string]int32{`{"type":"click","n":1}`: 0, `{"type":"click","n":3}`: 1}[string(r.Value)]; r.partition != want {
				t.Errorf("%s in partition %d, want %d", r.Value, r.partition, want)
			}
		}
	})
	t.Run("transform", func(t *testing.T) {
		out := n.consume("redacted")
		got := values(out)
		want := []string{`{"email":"a***@example.com","n":1}`, `{"user":{"email":"b***@example.org"},"n":2}`, `{"n":3}`}
		if !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		if h := header(out[0].Record, "redacted"); h != "1" {
			t.Errorf("redacted header %q", h)
		}
		if h := header(out[2].Record, "redacted"); h != "" {
			t.Errorf("untouched record has redacted header %q", h)
		}
	})
	t.Run("router", func(t *testing.T) {
		for topic, want := range map[string][]string{
			"clicks": {`{"type":"click","n":1}`, `{"type":"click","n":4}`},
			"views":  {`{"type":"view","n":2}`},
			"other":  {`{"type":"buy","n":3}`},
		} {
			if got := values(n.consume(topic)); !slices.Equal(got, want) {
				t.Errorf("%s: got %q, want %q", topic, got, want)
			}
		}
	})
	t.Run("split", func(t *testing.T) {
		out := n.consume("words")
		var keys []string
		for _, r := range out {
			keys = append(keys, string(r.Key))
			if string(r.Value) != "1" {
				t.Errorf("value %q", r.Value)
			}
			if want := keyPartition(r.Key, 3); r.partition != want {
				t.Errorf("word %q in partition %d, want %d (murmur2)", r.Key, r.partition, want)
			}
		}
		want := []string{"brown", "dog's", "fox", "fox", "lazy", "quick", "the", "the"}
		if got := sorted(keys); !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("list", func(t *testing.T) {
		var names []string
		for _, i := range n.m.List() {
			names = append(names, i.Name)
			if i.State != StateRunning || i.Version != 1 || i.Lag != 0 || len(i.Module) != 64 {
				t.Errorf("%+v", i)
			}
		}
		if !slices.Equal(names, []string{"filter", "router", "split", "transform"}) {
			t.Errorf("names %q", names)
		}
		d, err := n.m.Describe("router")
		if err != nil {
			t.Fatal(err)
		}
		if d.RecordsIn != 4 || d.RecordsOut != 4 || len(d.Partitions) != 2 || d.Partitions[1].Committed != 4 || d.Group != "wisp.fn.router" {
			t.Errorf("describe %+v", d)
		}
		// The commits are visible as a consumer group.
		off, err := n.b.Groups().FetchOffsets("wisp.fn.router", nil)
		if err != nil || len(off) != 2 {
			t.Errorf("group offsets %v %v", off, err)
		}
	})
}

// TestChain pipes two functions: A -> transform -> B -> filter -> C.
func TestChain(t *testing.T) {
	n := openNode(t, t.TempDir())
	n.createTopic("A", 1)
	n.deploy(Manifest{Name: "mask", Input: "A", Outputs: []string{"B"}, Start: "start"}, "examples/transform")
	n.deploy(Manifest{Name: "keep", Input: "B", Outputs: []string{"C"}, Start: "start",
		Env: map[string]string{"FIELD": "keep", "MATCH": "true"}}, "examples/filter")
	n.produce("A", 0, `{"email":"eve@example.com","keep":true}`, `{"email":"mallory@example.com","keep":false}`)
	n.waitCaughtUp("mask")
	n.waitCaughtUp("keep")
	if got := values(n.consume("C")); !slices.Equal(got, []string{`{"email":"e***@example.com","keep":true}`}) {
		t.Fatalf("C = %q", got)
	}
}

// TestAdversarial runs misbehaving records through the evil module with a
// dead-letter topic while another function keeps working: each failure
// is dead-lettered alone, the other records flow.
func TestAdversarial(t *testing.T) {
	n := openNode(t, t.TempDir())
	n.createTopic("evil-in", 1)
	n.createTopic("good-in", 1)
	n.deploy(Manifest{Name: "evil", Input: "evil-in", Outputs: []string{"evil-out"}, DLQ: "evil-dlq", Start: "start",
		Limits: Limits{MemoryMB: 16, Timeout: time.Second, Retries: 1}}, "testdata/evil")
	n.deploy(Manifest{Name: "good", Input: "good-in", Outputs: []string{"good-out"}, Start: "start",
		Env: map[string]string{"MODE": "map"}}, "testdata/bench")

	bad := []string{"trap", "loop", "bomb", "error", "panic", "huge", "exit"}
	var in []string
	for i, b := range bad {
		in = append(in, "ok-"+b, b)
		if i == 3 {
			n.produce("good-in", 0, seq("good", 50)...)
		}
	}
	in = append(in, "ok-last")
	n.produce("evil-in", 0, in...)
	// The healthy function keeps flowing while the evil one is bisected.
	waitFor(t, 30*time.Second, "the good function", func() bool { return len(n.consume("good-out")) == 50 })
	n.produce("good-in", 0, seq("more", 10)...)
	info := n.waitCaughtUp("evil")
	n.waitCaughtUp("good")

	var wantOK []string
	for _, b := range bad {
		wantOK = append(wantOK, "ok-"+b)
	}
	wantOK = append(wantOK, "ok-last")
	if got := values(n.consume("evil-out")); !slices.Equal(got, wantOK) {
		t.Errorf("outputs %q, want %q", got, wantOK)
	}
	dlq := n.consume("evil-dlq")
	if got := values(dlq); !slices.Equal(got, bad) {
		t.Fatalf("dead letters %q, want %q", got, bad)
	}
	wantErr := map[string]string{"trap": "out of bounds memory access", "loop": "deadline exceeded", "bomb": "memory limit exceeded",
		"error": "record refused", "panic": "panic: assignment to entry in nil map", "huge": "max.message.bytes", "exit": "exited with code 3"}
	for i, r := range dlq {
		v := string(r.Value)
		if e := header(r.Record, HeaderError); !strings.Contains(e, wantErr[v]) {
			t.Errorf("%s: wisp.error %q, want it to contain %q", v, e, wantErr[v])
		}
		if header(r.Record, HeaderFunction) != "evil" || header(r.Record, HeaderSourceTopic) != "evil-in" ||
			header(r.Record, HeaderSourcePartition) != "0" || header(r.Record, HeaderSourceOffset) != itoa(2*i+1) {
			t.Errorf("%s: headers %+v", v, r.Headers)
		}
	}
	if got := len(n.consume("good-out")); got != 60 {
		t.Errorf("good function wrote %d records, want 60", got)
	}
	if info.DeadLettered != int64(len(bad)) || info.Errors != int64(len(bad)) || info.RecordsOut != int64(len(wantOK)) {
		t.Errorf("info %+v", info)
	}
	d, _ := n.m.Describe("evil")
	if d.Instances.Discarded == 0 {
		t.Errorf("no instance was discarded: %+v", d.Instances)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestFailedState: without a DLQ a failing record stops the function after
// MaxFailures attempts, with the error visible; nothing after it is
// skipped, and a redeploy with a DLQ continues from there.
func TestFailedState(t *testing.T) {
	n := openNode(t, t.TempDir())
	n.createTopic("in", 1)
	man := Manifest{Name: "strict", Input: "in", Outputs: []string{"out"}, Start: "start", Limits: Limits{MaxFailures: 3}}
	n.deploy(man, "testdata/evil")
	n.produce("in", 0, "a", "b")
	n.waitCaughtUp("strict")
	n.produce("in", 0, "error", "c")
	var info Info
	waitFor(t, 30*time.Second, "state failed", func() bool {
		info, _ = n.m.Info("strict")
		return info.State == StateFailed
	})
	if !strings.Contains(info.Error, "3 consecutive failing batches") || !strings.Contains(info.Error, "record refused") ||
		!strings.Contains(info.Error, "offset 2") {
		t.Errorf("error %q", info.Error)
	}
	if info.Lag != 2 {
		t.Errorf("lag %d, want 2 (the failing record and the one after it)", info.Lag)
	}
	if got := values(n.consume("out")); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("outputs %q", got)
	}
	// The state survives a restart.
	n.close()
	n = openNode(t, n.dir)
	if info, _ := n.m.Info("strict"); info.State != StateFailed {
		t.Fatalf("after restart: %+v", info)
	}
	man.DLQ, man.Start = "dlq", "" // continue from the committed offset
	n.deploy(man, "testdata/evil")
	n.waitCaughtUp("strict")
	if got := values(n.consume("out")); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("outputs %q", got)
	}
	if got := values(n.consume("dlq")); !slices.Equal(got, []string{"error"}) {
		t.Errorf("dead letters %q", got)
	}
	if info, _ := n.m.Info("strict"); info.Version != 2 {
		t.Errorf("version %d", info.Version)
	}
}

func TestRejectedAtDeploy(t *testing.T) {
	n := openNode(t, t.TempDir())
	ctx := context.Background()
	for _, pkg := range []string{"testdata/noexports", "testdata/badabi", "testdata/nohandler"} {
		_, err := n.m.Deploy(ctx, Manifest{Name: "bad", Input: "in", Outputs: []string{"out"}}, module(t, pkg))
		if !errors.Is(err, wasm.ErrInvalidModule) {
			t.Errorf("%s: err = %v", pkg, err)
		}
	}
	if l := n.m.List(); len(l) != 0 {
		t.Fatalf("rejected modules listed: %+v", l)
	}
	// A bad redeploy leaves the running version alone.
	n.deploy(Manifest{Name: "fn", Input: "in", Outputs: []string{"out"}, Start: "start", Env: map[string]string{"MODE": "map"}}, "testdata/bench")
	if _, err := n.m.Deploy(ctx, Manifest{Name: "fn", Input: "in", Outputs: []string{"out"}}, []byte("garbage")); !errors.Is(err, wasm.ErrInvalidModule) {
		t.Fatalf("err = %v", err)
	}
	n.produce("in", 0, "x")
	if info := n.waitCaughtUp("fn"); info.Version != 1 {
		t.Errorf("version %d", info.Version)
	}
	for _, bad := range []Manifest{
		{Name: "no outputs", Input: "in"},
		{Name: "x", Input: "in", Outputs: []string{"in"}},
		{Name: "x", Input: "in", Outputs: []string{"out"}, Env: map[string]string{"WISP_FUNCTION": "y"}},
		{Name: "x", Input: "in", Outputs: []string{"out"}, Start: "yesterday"},
	} {
		if _, err := n.m.Deploy(ctx, bad, module(t, "testdata/bench")); !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("%+v: err = %v", bad, err)
		}
	}
}

// TestUndeclaredTopic: a write to a topic the manifest does not declare
// fails that record.
func TestUndeclaredTopic(t *testing.T) {
	n := openNode(t, t.TempDir())
	n.createTopic("in", 1)
	n.deploy(Manifest{Name: "r", Input: "in", Outputs: []string{"clicks"}, DLQ: "dlq", Start: "start",
		Env: map[string]string{"ROUTES": "click=clicks,view=views"}}, "examples/router")
	n.produce("in", 0, `{"type":"click"}`, `{"type":"view"}`)
	n.waitCaughtUp("r")
	dlq := n.consume("dlq")
	if len(dlq) != 1 || string(dlq[0].Value) != `{"type":"view"}` ||
		!strings.Contains(header(dlq[0].Record, HeaderError), `undeclared topic "views"`) {
		t.Fatalf("dead letters %+v", dlq)
	}
	if _, err := n.b.Topic("views"); err == nil {
		t.Error("the undeclared topic was created")
	}
}

func TestLifecycle(t *testing.T) {
	n := openNode(t, t.TempDir())
	ctx := context.Background()
	n.createTopic("in", 2)
	n.deploy(Manifest{Name: "fn", Input: "in", Outputs: []string{"out"}, Start: "start"}, "testdata/evil")
	lines, stop, err := n.m.Follow("fn")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	n.produce("in", 0, "log", "a")
	n.waitCaughtUp("fn")
	logs, _ := n.m.Logs("fn", time.Time{})
	var text []string
	for _, l := range logs {
		text = append(text, l.Stream+": "+l.Text)
	}
	joined := strings.Join(text, "\n")
	if !strings.Contains(joined, "stdout: hello from fn") || !strings.Contains(joined, "stderr: to stderr") ||
		!strings.Contains(joined, "wisp: version 1 deployed") {
		t.Errorf("logs:\n%s", joined)
	}
	select {
	case l := <-lines:
		if l.Stream != StreamStdout || l.Text != "hello from fn" {
			t.Errorf("first followed line %+v", l)
		}
	case <-time.After(5 * time.Second):
		t.Error("nothing followed")
	}

	if err := n.m.Pause(ctx, "fn"); err != nil {
		t.Fatal(err)
	}
	n.produce("in", 1, "b", "c")
	time.Sleep(300 * time.Millisecond)
	if info, _ := n.m.Info("fn"); info.State != StatePaused || info.Lag != 2 {
		t.Fatalf("paused: %+v", info)
	}
	if err := n.m.Resume(ctx, "fn"); err != nil {
		t.Fatal(err)
	}
	n.waitCaughtUp("fn")
	if got := sorted(values(n.consume("out"))); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("outputs %q", got)
	}
	bin, err := n.m.Module("fn")
	if err != nil || wasm.Hash(bin) != wasm.Hash(module(t, "testdata/evil")) {
		t.Errorf("Module: %v", err)
	}

	if err := n.m.Delete(ctx, "fn"); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-lines; ok {
		for range lines {
		}
	}
	if _, err := n.m.Info("fn"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if off, _ := n.b.Groups().FetchOffsets(GroupID("fn"), nil); len(off) != 0 {
		t.Errorf("offsets left: %v", off)
	}
	n.close()
	n = openNode(t, n.dir)
	if l := n.m.List(); len(l) != 0 {
		t.Errorf("deleted function back after restart: %+v", l)
	}
}

// TestRedeploy: a new version continues from the committed offsets; one
// with Start moves them.
func TestRedeploy(t *testing.T) {
	n := openNode(t, t.TempDir())
	n.createTopic("in", 1)
	man := Manifest{Name: "fn", Input: "in", Outputs: []string{"out"}, Start: "start",
		Env: map[string]string{"FIELD": "k", "MATCH": "1"}}
	n.deploy(man, "examples/filter")
	n.produce("in", 0, `{"k":1,"n":1}`, `{"k":2,"n":2}`)
	n.waitCaughtUp("fn")
	man.Env["MATCH"], man.Start = "2", ""
	if info := n.deploy(man, "examples/filter"); info.Version != 2 {
		t.Errorf("version %d", info.Version)
	}
	n.produce("in", 0, `{"k":1,"n":3}`, `{"k":2,"n":4}`)
	n.waitCaughtUp("fn")
	if got := values(n.consume("out")); !slices.Equal(got, []string{`{"k":1,"n":1}`, `{"k":2,"n":4}`}) {
		t.Fatalf("outputs %q", got)
	}
	man.Start = "1"
	n.deploy(man, "examples/filter")
	n.waitCaughtUp("fn")
	if got := values(n.consume("out")); !slices.Equal(got, []string{`{"k":1,"n":1}`, `{"k":2,"n":4}`, `{"k":2,"n":2}`, `{"k":2,"n":4}`}) {
		t.Fatalf("outputs after --from 1: %q", got)
	}
}

func TestStartPositions(t *testing.T) {
	n := openNode(t, t.TempDir())
	n.createTopic("in", 1)
	n.produce("in", 0, "old1", "old2", "old3")
	time.Sleep(20 * time.Millisecond)
	mid := time.Now()
	time.Sleep(20 * time.Millisecond)
	n.produce("in", 0, "new1")
	for start, want := range map[string][]string{
		"start":                            {"old1", "old2", "old3", "new1"},
		"end":                              nil,
		"2":                                {"old3", "new1"},
		"@" + mid.Format(time.RFC3339Nano): {"new1"},
	} {
		name := "from-" + strings.NewReplacer("@", "t", ":", "-", ".", "-", "+", "-").Replace(start)
		out := name + "-out"
		n.deploy(Manifest{Name: name, Input: "in", Outputs: []string{out}, Start: start, Env: map[string]string{"MODE": "map"}}, "testdata/bench")
		n.waitCaughtUp(name)
		if got := values(n.consume(out)); !slices.Equal(got, want) {
			t.Errorf("start %s: %q, want %q", start, got, want)
		}
	}
}
