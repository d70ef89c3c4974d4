// Package e2e_test drives real `wisp serve` processes (started by
// internal/testnode) with the wisp CLI binary, the Go client and net/http.
//
// The server binary is built once per test run, without -race; set
// WISP_BIN to test a prebuilt one.
package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/internal/testnode"
)

// cliResult is what one run of the wisp CLI did.
type cliResult struct {
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// cliEnv is the environment of CLI runs: the test's, without WISP_*
// settings that could redirect it, and a private config directory so that
// no known_hosts file of the user is read or written.
func cliEnv(t testing.TB, n *testnode.Node) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WISP_") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	home := t.TempDir()
	return append(env, "HOME="+home, "XDG_CONFIG_HOME="+home, "WISP_SERVER="+n.QUIC)
}

// wisp runs the CLI against n with stdin and args and returns what it did.
func wisp(t testing.TB, n *testnode.Node, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testnode.Binary(t), args...)
	cmd.Env = cliEnv(t, n)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("wisp %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("wisp %s: still running after 60s\n%s", strings.Join(args, " "), res)
	}
	return res
}

// mustWisp runs the CLI and fails the test unless it exits 0.
func mustWisp(t testing.TB, n *testnode.Node, stdin string, args ...string) cliResult {
	t.Helper()
	res := wisp(t, n, stdin, args...)
	if res.code != 0 {
		t.Fatalf("wisp %s: %s", strings.Join(args, " "), res)
	}
	return res
}

// mustJSON decodes the CLI's JSON output into v.
func mustJSON(t testing.TB, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("output is not the expected JSON: %v\n%s", err, out)
	}
}

// newClient connects a Go client to n; it is closed when the test ends.
func newClient(t testing.TB, n *testnode.Node, opts ...client.Opt) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(ctx, append([]client.Opt{client.Servers(n.QUIC)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func createTopic(t testing.TB, c *client.Client, name string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.CreateTopic(ctx, client.TopicSpec{Name: name, Partitions: partitions}); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
}

// checkFor polls cond every 20ms until it returns nil or d passes, then
// fails with its last error.
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

// httpDo sends a request to n's HTTP API and returns the status and body.
func httpDo(t testing.TB, n *testnode.Node, method, path, contentType, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.HTTP+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, out
}

// pollAll reads records with a group-less consumer of every partition of
// topic from the start until want(records) or the deadline.
func pollAll(t testing.TB, c *client.Client, topic string, d time.Duration, want func([]*client.Record) bool) []*client.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cons, err := c.NewConsumer(ctx, client.Topics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close(context.Background())
	var out []*client.Record
	for !want(out) {
		recs, err := cons.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("after %v: %d records of %s: %v", d, len(out), topic, err)
			}
			t.Logf("poll: %v", err)
			continue
		}
		out = append(out, recs...)
	}
	return out
}
