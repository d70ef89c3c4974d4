// Package extest runs the examples' scripted scenarios: it builds the
// example programs, starts a real `wisp serve` (internal/testnode), runs the
// programs as processes against it and polls for outcomes with deadlines.
//
// Only the tests use it; the example programs themselves use nothing but
// the public client package, the CLI, HTTP and kafka-python.
package extest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wispbus/wisp/internal/testnode"
)

// Root is the main module's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// buildMu serialises builds: the machine has two cores.
var buildMu sync.Mutex

// Build builds the main packages pkgs (paths relative to the module root,
// such as "examples/messaging/worker") into a temporary directory and
// returns the binaries' paths by the packages' last path element.
func Build(t testing.TB, pkgs ...string) map[string]string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	dir := t.TempDir()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, p := range pkgs {
		args = append(args, "./"+p)
	}
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = Root()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	bins := map[string]string{}
	for _, p := range pkgs {
		bins[filepath.Base(p)] = filepath.Join(dir, filepath.Base(p))
	}
	return bins
}

// BuildWasm builds the function module in dir (relative to the module
// root; its own Go module that requires sdk-wasm) with GOOS=wasip1
// GOARCH=wasm -buildmode=c-shared and returns the .wasm file's path.
func BuildWasm(t testing.TB, dir string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	out := filepath.Join(t.TempDir(), filepath.Base(dir)+".wasm")
	args := []string{"build", "-trimpath", "-buildvcs=false", "-buildmode=c-shared", "-o", out, "."}
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = filepath.Join(Root(), dir)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), cmd.Dir, err, b)
	}
	return out
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// Node starts a fresh `wisp serve` on free ports; it stops when the test
// ends.
func Node(t testing.TB, extra ...string) *testnode.Node {
	t.Helper()
	return testnode.Start(t, extra...)
}

// Env is the environment for example programs and CLI runs against n:
// the test's, without WISP_* settings, with a private HOME (no known_hosts
// of the user) and WISP_SERVER, WISP_HTTP_URL and KAFKA_BOOTSTRAP set to n.
func Env(t testing.TB, n *testnode.Node) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WISP_") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	home := t.TempDir()
	return append(env, "HOME="+home, "XDG_CONFIG_HOME="+home,
		"WISP_SERVER="+n.QUIC, "WISP_HTTP_URL=http://"+n.HTTP, "KAFKA_BOOTSTRAP="+n.Kafka)
}

// Run runs a program to completion (at most 2 minutes) with stdin and
// returns its stdout; it fails the test, with both outputs, unless the
// program exits 0.
func Run(t testing.TB, n *testnode.Node, stdin, bin string, args ...string) string {
	t.Helper()
	out, errOut, err := RunErr(t, n, stdin, bin, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// RunErr runs a program to completion (at most 2 minutes) and returns its
// stdout, stderr and exit error.
func RunErr(t testing.TB, n *testnode.Node, stdin, bin string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = Env(t, n)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after 2 minutes\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String(), err
}

// Wisp runs the wisp CLI against n and returns its stdout; it fails the
// test unless the CLI exits 0.
func Wisp(t testing.TB, n *testnode.Node, stdin string, args ...string) string {
	t.Helper()
	return Run(t, n, stdin, testnode.Binary(t), args...)
}

// Proc is a program running in the background.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	out  *syncBuf
	done chan struct{}
	err  error
}

// Start starts a program in the background; it is killed, if still
// running, when the test ends.
func Start(t testing.TB, n *testnode.Node, bin string, args ...string) *Proc {
	t.Helper()
	return StartEnv(t, Env(t, n), bin, args...)
}

// StartEnv is Start with an explicit environment.
func StartEnv(t testing.TB, env []string, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: filepath.Base(bin) + " " + strings.Join(args, " "), out: &syncBuf{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", p.Name, p.Output())
		}
	})
	return p
}

// Output is what the program printed so far (stdout and stderr).
func (p *Proc) Output() string { return p.out.String() }

// Signal sends sig to the program.
func (p *Proc) Signal(sig os.Signal) { _ = p.cmd.Process.Signal(sig) }

// Kill sends SIGKILL (a crash) and waits for the exit.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Wait waits at most d for the program to exit and fails the test unless
// it exited 0.
func (p *Proc) Wait(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s still running after %v:\n%s", p.Name, d, p.Output())
	}
	if p.err != nil {
		t.Fatalf("%s: %v\n%s", p.Name, p.err, p.Output())
	}
}

// Stop sends SIGINT and waits (at most 30s) for a clean exit.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	p.Signal(os.Interrupt)
	p.Wait(t, 30*time.Second)
}

// Exited reports whether the program has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// CheckFor polls cond every 50ms until it returns nil or d passes, then
// fails the test with its last error.
func CheckFor(t testing.TB, d time.Duration, cond func() error) {
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
		time.Sleep(50 * time.Millisecond)
	}
}

// Lines counts the lines of s that contain substr.
func Lines(s, substr string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// WaitHTTP polls url until it answers 200.
func WaitHTTP(t testing.TB, url string, d time.Duration) {
	t.Helper()
	CheckFor(t, d, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	})
}

// Python returns a python3 that imports kafka (kafka-python). Without one
// it skips the test loudly, or fails it when CI is set.
func Python(t testing.TB) string {
	t.Helper()
	var tried []string
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		out, err := exec.Command(path, "-c", "import kafka").CombinedOutput()
		if err == nil {
			return path
		}
		tried = append(tried, fmt.Sprintf("%s: %s", path, strings.TrimSpace(string(out))))
	}
	msg := fmt.Sprintf("MISSING TOOL python3 with kafka-python (scripts/test-deps.sh, or apt-get install python3-kafka; tried %v): this example's Python part did NOT run", tried)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
