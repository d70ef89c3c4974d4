package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a server running as a child process: wisp, or NATS in this same
// binary started with -nats-serve. Both peers run the same way, so neither
// shares a Go runtime (scheduler, GC) with the load generator.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string // path of the combined stdout/stderr
	done chan error
}

// startProc starts bin with args, output to logPath.
func startProc(name, bin string, args []string, logPath string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() {
		p.done <- cmd.Wait()
		f.Close()
	}()
	return p, nil
}

// stop asks the process to exit (SIGTERM) and kills it after a grace period.
func (p *proc) stop() error {
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil // a signalled exit is the expected one
		}
		return err
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within 20s; killed", p.name)
	}
}

// exited reports an early exit, with the tail of the log.
func (p *proc) exited() error {
	select {
	case err := <-p.done:
		p.done <- err
		return fmt.Errorf("%s exited (%v); log tail:\n%s", p.name, err, tail(p.log, 2000))
	default:
		return nil
	}
}

// cpuMeter is the CPU time used so far by the server processes of one
// system: one process, or the members of a cluster (procGroup).
type cpuMeter interface{ cpu() time.Duration }

// procGroup is the processes of a cluster; its CPU is their sum.
type procGroup []*proc

func (g procGroup) cpu() time.Duration {
	var t time.Duration
	for _, p := range g {
		t += p.cpu()
	}
	return t
}

// kill ends the process with SIGKILL (a crash, for the failover
// measurement) and waits for it; a later stop returns at once.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	err := <-p.done
	p.done <- err
}

// cpu is the user+system CPU time the process has used so far.
func (p *proc) cpu() time.Duration {
	if p == nil {
		return 0
	}
	return procCPU(p.cmd.Process.Pid)
}

// procCPU reads utime+stime of pid from /proc (0 when unreadable).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may contain spaces: fields count from
	// after its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// freeTCP and freeUDP return a loopback address with a port free right now.
func freeTCP() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func freeUDP() (string, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().String(), nil
}

// buildWisp builds ../cmd/wisp (relative to the bench module) the way
// `make build` does, into dir.
func buildWisp(ctx context.Context, dir string) (string, error) {
	root, err := wispRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "wisp")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/wisp")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/wisp: %w\n%s", err, b)
	}
	return out, nil
}

// wispRoot finds the wisp module root: the nearest parent of the working
// directory whose go.mod declares module github.com/wispbus/wisp.
func wispRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				if strings.TrimSpace(sc.Text()) == "module github.com/wispbus/wisp" {
					return dir, nil
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("wisp module root not found above the working directory; run from bench/ or pass -wisp-bin")
		}
		dir = parent
	}
}

// wispNode is a wisp process and its listener addresses.
type wispNode struct {
	*proc
	quic, kafka, http string
}

func startWisp(ctx context.Context, bin, dir string) (*wispNode, error) {
	var extra []string
	// A later serve may grow a gossip listener with a fixed default port;
	// give it a free one so two runs never collide.
	if help, _ := exec.Command(bin, "serve", "--help").CombinedOutput(); bytes.Contains(help, []byte("--gossip ")) {
		g, err := freeTCP()
		if err != nil {
			return nil, err
		}
		extra = append(extra, "--gossip", g)
	}
	n, err := spawnWisp(bin, dir, extra...)
	if err != nil {
		return nil, err
	}
	if err := n.waitReady(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// startWispCluster starts n wisp nodes (ids 1..n, data in dir/node-ID)
// that find each other by gossip and form the cluster together
// (--bootstrap-expect n), as internal/testnode.StartCluster does, and
// waits until each is ready.
func startWispCluster(ctx context.Context, bin, dir string, n int) ([]*wispNode, error) {
	gossip := make([]string, n)
	for i := range gossip {
		g, err := freeTCP()
		if err != nil {
			return nil, err
		}
		gossip[i] = g
	}
	var nodes []*wispNode
	stopAll := func() {
		for _, x := range nodes {
			_ = x.stop()
		}
	}
	for i := range n {
		var join []string
		for j, g := range gossip {
			if j != i {
				join = append(join, g)
			}
		}
		x, err := spawnWisp(bin, mkdir(dir, fmt.Sprintf("node-%d", i+1)), "--node-id", strconv.Itoa(i+1),
			"--gossip", gossip[i], "--join", strings.Join(join, ","), "--bootstrap-expect", strconv.Itoa(n),
			"--functions=false")
		if err != nil {
			stopAll()
			return nil, err
		}
		x.name = fmt.Sprintf("wisp node %d", i+1)
		nodes = append(nodes, x)
	}
	for _, x := range nodes {
		if err := x.waitReady(ctx); err != nil {
			stopAll()
			return nil, err
		}
	}
	return nodes, nil
}

// spawnWisp starts `wisp serve` on free loopback ports with data in dir
// and the extra args, without waiting for it.
func spawnWisp(bin, dir string, extra ...string) (*wispNode, error) {
	quic, err := freeUDP()
	if err != nil {
		return nil, err
	}
	kafka, err := freeTCP()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeTCP()
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--data", filepath.Join(dir, "data"),
		"--quic", quic, "--kafka", kafka, "--http", httpAddr, "--log-level", "warn"}, extra...)
	p, err := startProc("wisp", bin, args, filepath.Join(dir, "wisp.log"))
	if err != nil {
		return nil, err
	}
	return &wispNode{proc: p, quic: quic, kafka: kafka, http: httpAddr}, nil
}

// waitReady polls /readyz until the node answers 200, for 30 s at most.
func (n *wispNode) waitReady(ctx context.Context) error {
	p := n.proc
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := p.exited(); err != nil {
			return err
		}
		resp, err := http.Get("http://" + n.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			_ = p.stop()
			return fmt.Errorf("%s not ready after 30s; log tail:\n%s", p.name, tail(p.log, 2000))
		}
		select {
		case <-ctx.Done():
			_ = p.stop()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// natsNode is a NATS server process (this binary with -nats-serve).
type natsNode struct {
	*proc
	url, addr  string
	syncAlways bool
}

func startNATS(ctx context.Context, dir string, syncAlways bool) (*natsNode, error) {
	addr, err := freeTCP()
	if err != nil {
		return nil, err
	}
	var args []string
	if syncAlways {
		args = append(args, "-nats-sync-always")
	}
	n, err := spawnNATS(dir, addr, args...)
	if err != nil {
		return nil, err
	}
	n.syncAlways = syncAlways
	if err := n.waitListening(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// startNATSCluster starts a JetStream cluster of n servers (names n1..nN,
// store in dir/nI) routed to each other, with the default sync_interval.
func startNATSCluster(ctx context.Context, dir string, n int) ([]*natsNode, error) {
	client := make([]string, n)
	routes := make([]string, n)
	for i := range n {
		var err error
		if client[i], err = freeTCP(); err != nil {
			return nil, err
		}
		if routes[i], err = freeTCP(); err != nil {
			return nil, err
		}
	}
	var nodes []*natsNode
	stopAll := func() {
		for _, x := range nodes {
			_ = x.stop()
		}
	}
	for i := range n {
		var others []string
		for j, r := range routes {
			if j != i {
				others = append(others, r)
			}
		}
		x, err := spawnNATS(mkdir(dir, fmt.Sprintf("n%d", i+1)), client[i], "-nats-name", fmt.Sprintf("n%d", i+1),
			"-nats-cluster", routes[i], "-nats-routes", strings.Join(others, ","))
		if err != nil {
			stopAll()
			return nil, err
		}
		x.name = fmt.Sprintf("nats-server n%d", i+1)
		nodes = append(nodes, x)
	}
	for _, x := range nodes {
		if err := x.waitListening(ctx); err != nil {
			stopAll()
			return nil, err
		}
	}
	return nodes, nil
}

// spawnNATS starts this binary with -nats-serve on addr, store in dir,
// with the extra args, without waiting for it.
func spawnNATS(dir, addr string, extra ...string) (*natsNode, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := append([]string{"-nats-serve", "-nats-addr", addr, "-nats-dir", filepath.Join(dir, "jetstream")}, extra...)
	p, err := startProc("nats-server", self, args, filepath.Join(dir, "nats.log"))
	if err != nil {
		return nil, err
	}
	return &natsNode{proc: p, url: "nats://" + addr, addr: addr}, nil
}

// waitListening waits until the server accepts client connections, for
// 30 s at most.
func (n *natsNode) waitListening(ctx context.Context) error {
	p := n.proc
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := p.exited(); err != nil {
			return err
		}
		if c, err := net.DialTimeout("tcp", n.addr, time.Second); err == nil {
			c.Close()
			// The listener opens after JetStream is enabled (Start
			// enables JetStream before accepting clients).
			return nil
		}
		if time.Now().After(deadline) {
			_ = p.stop()
			return fmt.Errorf("%s not ready after 30s; log tail:\n%s", p.name, tail(p.log, 2000))
		}
		select {
		case <-ctx.Done():
			_ = p.stop()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
