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
	args := []string{"serve", "--data", filepath.Join(dir, "data"),
		"--quic", quic, "--kafka", kafka, "--http", httpAddr, "--log-level", "warn"}
	// A later serve may grow a gossip listener with a fixed default port;
	// give it a free one so two runs never collide.
	if help, _ := exec.Command(bin, "serve", "--help").CombinedOutput(); bytes.Contains(help, []byte("--gossip ")) {
		g, err := freeUDP()
		if err != nil {
			return nil, err
		}
		args = append(args, "--gossip", g)
	}
	p, err := startProc("wisp", bin, args, filepath.Join(dir, "wisp.log"))
	if err != nil {
		return nil, err
	}
	n := &wispNode{proc: p, quic: quic, kafka: kafka, http: httpAddr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := p.exited(); err != nil {
			return nil, err
		}
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n, nil
			}
		}
		if time.Now().After(deadline) {
			_ = p.stop()
			return nil, fmt.Errorf("wisp not ready after 30s; log tail:\n%s", tail(p.log, 2000))
		}
		select {
		case <-ctx.Done():
			_ = p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// natsNode is a NATS server process (this binary with -nats-serve).
type natsNode struct {
	*proc
	url        string
	syncAlways bool
}

func startNATS(ctx context.Context, dir string, syncAlways bool) (*natsNode, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freeTCP()
	if err != nil {
		return nil, err
	}
	args := []string{"-nats-serve", "-nats-addr", addr, "-nats-dir", filepath.Join(dir, "jetstream")}
	if syncAlways {
		args = append(args, "-nats-sync-always")
	}
	p, err := startProc("nats-server", self, args, filepath.Join(dir, "nats.log"))
	if err != nil {
		return nil, err
	}
	n := &natsNode{proc: p, url: "nats://" + addr, syncAlways: syncAlways}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := p.exited(); err != nil {
			return nil, err
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			// The listener opens after JetStream is enabled (Start
			// enables JetStream before accepting clients).
			return n, nil
		}
		if time.Now().After(deadline) {
			_ = p.stop()
			return nil, fmt.Errorf("nats not ready after 30s; log tail:\n%s", tail(p.log, 2000))
		}
		select {
		case <-ctx.Done():
			_ = p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
