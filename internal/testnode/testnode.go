// Package testnode starts real wisp server processes for end-to-end tests:
// the binary built from ./cmd/wisp (or $WISP_BIN), on free loopback ports, in
// a temporary data directory.
//
//	n := testnode.Start(t)
//	defer n.Stop(t)
//	// n.QUIC, n.Kafka, n.HTTP are "127.0.0.1:port" addresses
package testnode

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of the wisp binary: $WISP_BIN when set, otherwise
// one built once per test process from this module's ./cmd/wisp.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("WISP_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "wisp-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "wisp")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/wisp")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/wisp: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Node is a running wisp serve process.
type Node struct {
	Dir   string // data directory
	QUIC  string // udp address
	Kafka string // tcp address
	HTTP  string // tcp address
	// Gossip is the memberlist address (cluster nodes only).
	Gossip string
	Args   []string
	Log    *bytes.Buffer

	cmd  *exec.Cmd
	done chan struct{}
}

// FreeTCP returns a free loopback TCP address.
func FreeTCP(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// FreeUDP returns a free loopback UDP address.
func FreeUDP(t testing.TB) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// Start runs `wisp serve` on free ports in a new temp dir, with extra args,
// and waits until it answers /readyz. The node is stopped when the test ends.
func Start(t testing.TB, extra ...string) *Node {
	t.Helper()
	n := &Node{Dir: t.TempDir(), QUIC: FreeUDP(t), Kafka: FreeTCP(t), HTTP: FreeTCP(t), Args: extra}
	n.start(t)
	t.Cleanup(func() { n.Stop(t) })
	return n
}

func (n *Node) start(t testing.TB) {
	t.Helper()
	n.spawn(t)
	n.waitReady(t)
}

// spawn starts the process without waiting for it to be ready.
func (n *Node) spawn(t testing.TB) {
	t.Helper()
	args := append([]string{"serve", "--data", n.Dir, "--quic", n.QUIC, "--kafka", n.Kafka, "--http", n.HTTP}, n.Args...)
	n.Log = &bytes.Buffer{}
	n.cmd = exec.Command(Binary(t), args...)
	n.cmd.Stdout = &syncWriter{w: n.Log}
	n.cmd.Stderr = n.cmd.Stdout
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.done = make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(n.done) }()
}

// waitReady waits until the node answers /readyz.
func (n *Node) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-n.done:
			t.Fatalf("wisp serve exited during start: %v\n%s", n.cmd.ProcessState, n.Logs())
		default:
		}
		resp, err := http.Get("http://" + n.HTTP + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			n.Kill(t)
			t.Fatalf("wisp serve not ready after 20s\n%s", n.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Logs returns what the process printed so far.
func (n *Node) Logs() string {
	if w, ok := n.cmd.Stdout.(*syncWriter); ok {
		w.mu.Lock()
		defer w.mu.Unlock()
	}
	return n.Log.String()
}

// Stop sends SIGINT (a clean shutdown) and waits for the exit.
func (n *Node) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(os.Interrupt)
	select {
	case <-n.done:
	case <-time.After(20 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
		t.Fatalf("wisp serve did not stop on SIGINT within 20s\n%s", n.Logs())
	}
}

// Kill sends SIGKILL and waits for the exit.
func (n *Node) Kill(t testing.TB) {
	t.Helper()
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// Restart starts the process again on the same ports and data directory
// (after Stop or Kill).
func (n *Node) Restart(t testing.TB) {
	t.Helper()
	n.start(t)
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
