package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/internal/testnode"
)

// TestBenchUsageErrors checks the flag validation of wisp bench: exit
// code 2 and one line, before connecting to anything.
func TestBenchUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "missing command"},
		{[]string{"bench", "produce", "--json", "--csv"}, "exclusive"},
		{[]string{"bench", "produce", "--acks", "most"}, `--acks "most"`},
		{[]string{"bench", "produce", "-z", "brotli"}, `--compression "brotli"`},
		{[]string{"bench", "produce", "-P", "0"}, "--producers"},
		{[]string{"bench", "produce", "--batch-bytes", "10"}, "--batch-bytes"},
		{[]string{"bench", "produce", "--buffer-bytes", "1000"}, "--buffer-bytes 1000: want at least --batch-bytes"},
		{[]string{"bench", "produce", "-c", "flush"}, "want key=value"},
		{[]string{"bench", "consume", "-o", "middle"}, `--offset "middle"`},
		{[]string{"bench", "consume", "-o", "end"}, "give -n or -d"},
		{[]string{"bench", "consume", "--rate", "5"}, "unknown flag: --rate"},
		{[]string{"bench", "e2e", "-s", "8"}, "at least 16"},
		{[]string{"bench", "e2e", "extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(c.args, strings.NewReader(""), &stdout, &stderr)
			if code != 2 {
				t.Fatalf("exit code %d, want 2; stderr %q", code, stderr.String())
			}
			if msg := stderr.String(); strings.Count(msg, "\n") != 1 || !strings.Contains(msg, c.want) {
				t.Fatalf("stderr %q, want one line with %q", msg, c.want)
			}
		})
	}
}

// TestBenchCommands runs the wisp binary's bench subcommands against a
// real node and checks their JSON and CSV output, then that the records
// landed: the topics' offsets, and the records read back with the client.
func TestBenchCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a wisp process")
	}
	n := testnode.Start(t)
	run := func(args ...string) (string, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, testnode.Binary(t), append([]string{"bench"}, args...)...)
		cmd.Env = benchEnv(t, n)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("wisp bench %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	decode := func(out string) benchJSONResult {
		t.Helper()
		var r benchJSONResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("not the expected JSON: %v\n%s", err, out)
		}
		return r
	}
	checkLatency := func(what string, l *benchJSONLatency, count int64) {
		t.Helper()
		if l == nil {
			t.Fatalf("%s: no latency", what)
		}
		if l.Count != count || l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max || l.Min > l.P50 {
			t.Fatalf("%s: latency %+v, want %d values in order min <= p50 <= p90 <= p99 <= p99.9 <= max", what, *l, count)
		}
	}

	c, err := client.New(context.Background(), client.Servers(n.QUIC))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	endOffsets := func(topic string) (int32, int64) {
		t.Helper()
		ti, err := c.DescribeTopic(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, p := range ti.Partitions {
			sum += p.HighWatermark
		}
		return int32(len(ti.Partitions)), sum
	}

	// produce: 2 producers into a new topic of 3 partitions.
	out, stderr := run("produce", "-t", "bench-p", "-p", "3", "-c", "flush=os", "-n", "3001", "-P", "2", "-s", "64",
		"--linger", "1ms", "-z", "lz4", "--buffer-bytes", "4194304", "--json", "--progress-interval", "50ms")
	p := decode(out)
	if p.Mode != "produce" || p.Topic != "bench-p" || p.RecordSize != 64 || p.Records != 3001 || p.Bytes != 3001*64 ||
		p.Errors != 0 || p.RecordsPerSec <= 0 || p.ElapsedSec <= 0 || p.Sent != nil || p.Lost != nil {
		t.Fatalf("produce result %+v", p)
	}
	if p.Settings.Producers != 2 || p.Settings.Partitions != 3 || p.Settings.Compression != "lz4" || p.Settings.Acks != "all" || p.Settings.LingerMS != 1 ||
		p.Settings.BufferBytes != 4<<20 {
		t.Fatalf("produce settings %+v", p.Settings)
	}
	checkLatency("produce", p.Latency, 3001)
	if len(p.Clients) != 2 || p.Clients[0].Records+p.Clients[1].Records != 3001 || p.Clients[0].Role != "producer" {
		t.Fatalf("produce clients %+v", p.Clients)
	}
	if !strings.Contains(stderr, "produce: 3001/3001 records") {
		t.Errorf("no final progress line on stderr: %q", stderr)
	}
	if parts, end := endOffsets("bench-p"); parts != 3 || end != 3001 {
		t.Fatalf("topic bench-p: %d partitions, %d records; want 3 and 3001", parts, end)
	}

	// consume: what the topic holds, with 3 consumers splitting it.
	out, _ = run("consume", "-t", "bench-p", "-C", "3", "--json", "--no-progress")
	k := decode(out)
	if k.Mode != "consume" || k.Records != 3001 || k.Bytes != 3001*64 || k.Latency != nil || len(k.Clients) != 3 {
		t.Fatalf("consume result %+v", k)
	}
	var sum int64
	for _, cl := range k.Clients {
		if cl.Role != "consumer" {
			t.Fatalf("consume clients %+v", k.Clients)
		}
		sum += cl.Records
	}
	if sum != 3001 {
		t.Fatalf("consumers got %d records in all", sum)
	}
	// -n fewer than the topic holds: exactly that many, in a group.
	out, _ = run("consume", "-t", "bench-p", "-n", "1000", "-g", "bench-g", "--json", "--no-progress")
	if k := decode(out); k.Records != 1000 || k.Settings.Group != "bench-g" {
		t.Fatalf("consume -n 1000 -g: %+v", k)
	}

	// The records themselves: 64-byte values, every one there.
	cons, err := c.NewConsumer(context.Background(), client.Topics("bench-p"))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	pctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for got < 3001 {
		recs, err := cons.Poll(pctx)
		if err != nil {
			t.Fatalf("read back after %d records: %v", got, err)
		}
		for _, r := range recs {
			if len(r.Value) != 64 {
				t.Fatalf("record %s: value of %d bytes, want 64", r, len(r.Value))
			}
		}
		got += len(recs)
	}
	cons.Close(context.Background())

	// e2e: a fixed rate, consumers on their own connections.
	out, _ = run("e2e", "-t", "bench-e", "-p", "2", "-c", "flush=os", "-n", "400", "--rate", "2000", "-P", "2", "-C", "2",
		"--json", "--no-progress")
	e := decode(out)
	if e.Mode != "e2e" || e.Records != 400 || e.Sent == nil || *e.Sent != 400 || e.Lost == nil || *e.Lost != 0 ||
		e.Settings.Rate != 2000 || e.Settings.LingerMS != 0 || len(e.Clients) != 4 {
		t.Fatalf("e2e result %+v", e)
	}
	checkLatency("e2e", e.Latency, 400)
	if _, end := endOffsets("bench-e"); end != 400 {
		t.Fatalf("topic bench-e holds %d records, want 400", end)
	}

	// CSV: a row per client and the total.
	out, _ = run("produce", "-t", "bench-p", "-n", "100", "--csv", "--no-progress")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v\n%s", err, out)
	}
	if len(rows) != 3 || rows[0][3] != "records" || rows[2][2] != "total" || rows[2][3] != "100" {
		t.Fatalf("CSV rows %q", rows)
	}
	if p50, err := strconv.ParseFloat(rows[2][8], 64); err != nil || p50 <= 0 {
		t.Fatalf("CSV total p50 %q", rows[2][8])
	}
	if _, end := endOffsets("bench-p"); end != 3101 {
		t.Fatalf("topic bench-p holds %d records after 100 more, want 3101", end)
	}

	// The text table.
	out, _ = run("produce", "-t", "bench-p", "-n", "10", "--no-progress")
	for _, want := range []string{"produce: topic bench-p", "CLIENT", "producer 1", "total", "P99.9", "latency: produce call to acknowledgement"} {
		if !strings.Contains(out, want) {
			t.Fatalf("text output lacks %q:\n%s", want, out)
		}
	}
}

// benchEnv is the environment of the wisp CLI in tests: no WISP_* of the
// caller, a private home (no known_hosts of the user), the node's address.
func benchEnv(t *testing.T, n *testnode.Node) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WISP_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			env = append(env, kv)
		}
	}
	home := t.TempDir()
	return append(env, "HOME="+home, "XDG_CONFIG_HOME="+home, "WISP_SERVER="+n.QUIC)
}

// TestBenchFn deploys the filter example (built for wasip1 from
// sdk-wasm/examples) and runs wisp bench fn through it: every record the
// function wrote arrives, stamped, at its output.
func TestBenchFn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a wisp process and builds a WebAssembly module")
	}
	_, file, _, _ := runtime.Caller(0)
	sdk := filepath.Join(filepath.Dir(file), "..", "..", "sdk-wasm")
	module := filepath.Join(t.TempDir(), "filter.wasm")
	build := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-o", module, "./examples/filter")
	build.Dir = sdk
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the filter example: %v\n%s", err, out)
	}
	wasm, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	n := testnode.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.New(ctx, client.Servers(n.QUIC))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, topic := range []string{"fn-in", "fn-out"} {
		if _, err := c.CreateTopic(ctx, client.TopicSpec{Name: topic, Partitions: 2, Configs: map[string]string{"flush": "os"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DeployFunction(ctx, client.FunctionSpec{Name: "keep", Input: "fn-in", Outputs: []string{"fn-out"},
		Env: map[string]string{"MATCH": "wisp-bench"}}, wasm); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, testnode.Binary(t), "bench", "fn", "keep", "-n", "300", "--rate", "3000", "-C", "2", "--json", "--no-progress")
	cmd.Env = benchEnv(t, n)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("wisp bench fn: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var r benchJSONResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("not the expected JSON: %v\n%s", err, stdout.String())
	}
	if r.Mode != "fn" || r.Function != "keep" || r.Topic != "fn-in" || r.OutputTopic != "fn-out" || r.Sent == nil || *r.Sent != 300 ||
		r.Written == nil || *r.Written != 300 || r.Records != 300 || r.Lost == nil || *r.Lost != 0 || r.Latency == nil || r.Latency.Count != 300 {
		t.Fatalf("bench fn result %s", stdout.String())
	}
	offs, err := c.ListOffsets(ctx, "fn-out", client.AtEnd())
	if err != nil {
		t.Fatal(err)
	}
	var end int64
	for _, o := range offs {
		end += o.Offset
	}
	if end != 300 {
		t.Fatalf("fn-out holds %d records, want 300", end)
	}
}
