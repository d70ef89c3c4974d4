package cli

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// TestUsageErrors runs client commands whose arguments are wrong: they
// fail with exit code 2 and one line, before connecting to anything.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"consume", "t", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"consume"}, "missing TOPIC"},
		{[]string{"consume", "a", "b"}, `unexpected argument "b"`},
		{[]string{"consume", "t", "-o", "yesterday"}, `offset "yesterday"`},
		{[]string{"consume", "t", "-f", "%q"}, "unknown verb %q"},
		{[]string{"consume", "t", "-g", "g", "-p", "1"}, "-p and -g are exclusive"},
		{[]string{"consume", "t", "-f", "%v", "--format", "json"}, "-f and --format json are exclusive"},
		{[]string{"consume", "t", "--format", "yaml"}, `--format "yaml"`},
		{[]string{"produce", "t", "--acks", "most"}, `--acks "most"`},
		{[]string{"produce", "t", "-z", "brotli"}, `--compression "brotli"`},
		{[]string{"produce", "t", "-k", "k", "--key-separator", ":"}, "exclusive"},
		{[]string{"produce", "t", "-H", "novalue"}, `--header "novalue": want key=value`},
		{[]string{"topic"}, "missing command"},
		{[]string{"topic", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"topic", "create"}, "missing NAME"},
		{[]string{"topic", "create", "x", "-c", "retention.ms"}, "want key=value"},
		{[]string{"topic", "alter-config", "x"}, "nothing to change"},
		{[]string{"topic", "list", "--timeout", "0s"}, "--timeout"},
		{[]string{"group", "describe"}, "missing GROUP"},
		{[]string{"cluster", "status", "extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(c.args, strings.NewReader(""), &stdout, &stderr)
			if code != 2 {
				t.Fatalf("exit code %d, want 2; stderr %q", code, stderr.String())
			}
			msg := stderr.String()
			if !strings.HasPrefix(msg, "wisp: ") || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, c.want) {
				t.Fatalf("stderr %q, want one line with %q", msg, c.want)
			}
			if stdout.Len() != 0 {
				t.Fatalf("stdout %q", stdout.String())
			}
		})
	}
}

// TestServerFromEnv checks that WISP_SERVER and WISP_TIMEOUT reach the
// client flags: a connection to a port nobody listens on names them.
func TestServerFromEnv(t *testing.T) {
	t.Setenv("WISP_SERVER", "127.0.0.1:1")
	t.Setenv("WISP_TIMEOUT", "300ms")
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := Main([]string{"topic", "list"}, strings.NewReader(""), &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit code %d; stderr %q", code, stderr.String())
	}
	if want := "wisp: cannot connect to 127.0.0.1:1"; !strings.HasPrefix(stderr.String(), want) {
		t.Fatalf("stderr %q, want %q...", stderr.String(), want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v despite WISP_TIMEOUT=300ms", d)
	}
}

func readAll(t *testing.T, in string, maxLine int) ([]string, error) {
	t.Helper()
	out := make(chan lineChunk)
	done := make(chan struct{})
	defer close(done)
	go readLines(iotest.OneByteReader(strings.NewReader(in)), maxLine, out, done)
	var lines []string
	var err error
	for c := range out {
		for _, l := range c.lines {
			if l == nil {
				t.Fatal("nil line: would be a null value")
			}
			lines = append(lines, string(l))
		}
		if c.err != nil {
			err = c.err
		}
	}
	return lines, err
}

func TestReadLines(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a\n", []string{"a"}},
		{"a\nb", []string{"a", "b"}},
		{"a\n\nb\n", []string{"a", "", "b"}},
		{"\n", []string{""}},
		{"k:v\r\n", []string{"k:v\r"}},
	} {
		got, err := readAll(t, c.in, 100)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

func TestReadLinesTooLong(t *testing.T) {
	const max = 32
	ok := strings.Repeat("x", max)
	got, err := readAll(t, ok+"\n"+ok, max)
	if err != nil || len(got) != 2 {
		t.Fatalf("lines of exactly the limit: %q, %v", got, err)
	}
	got, err = readAll(t, "short\n"+ok+"y\nafter\n", max)
	if err == nil || !strings.Contains(err.Error(), "longer than 32 bytes") {
		t.Fatalf("err %v", err)
	}
	if len(got) != 1 || got[0] != "short" {
		t.Fatalf("lines before the long one: %q", got)
	}
}

func TestReadLinesMany(t *testing.T) {
	var b strings.Builder
	for i := range 5000 {
		b.WriteString(strings.Repeat("v", i%300))
		b.WriteByte('\n')
	}
	out := make(chan lineChunk)
	done := make(chan struct{})
	defer close(done)
	go readLines(strings.NewReader(b.String()), 1<<20, out, done)
	n := 0
	for c := range out {
		for _, l := range c.lines {
			if len(l) != n%300 {
				t.Fatalf("line %d has %d bytes", n, len(l))
			}
			n++
		}
	}
	if n != 5000 {
		t.Fatalf("%d lines", n)
	}
}
