package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wispbus/wisp/internal/testnode"
)

// Node is one `wisp serve` process in its own namespace.
type Node struct {
	ID      int
	IP      string
	Dir     string // data directory
	LogPath string
	args    []string
	net     *Net

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Addresses of the node's listeners.
func (n *Node) QUIC() string  { return n.IP + ":7070" }
func (n *Node) Kafka() string { return n.IP + ":9092" }
func (n *Node) HTTP() string  { return n.IP + ":8080" }

// Cluster is the nodes of one run and a CLI home to inspect them.
type Cluster struct {
	Net   *Net
	Nodes []*Node
	bin   string
	home  string
}

// ClusterConfig tunes StartCluster.
type ClusterConfig struct {
	Nodes     int
	Functions bool
	// DataDir, when it returns non-empty for a node, is that node's data
	// directory (the disk-full scenario puts one on a small tmpfs).
	DataDir func(id int) string
}

// StartCluster starts cfg.Nodes nodes, each in its own namespace of nt,
// finding each other by gossip, and waits until each is ready.
func StartCluster(t testing.TB, nt *Net, cfg ClusterConfig) *Cluster {
	t.Helper()
	c := &Cluster{Net: nt, bin: testnode.Binary(t), home: t.TempDir()}
	logs := t.TempDir()
	var gossip []string
	for i := 1; i <= cfg.Nodes; i++ {
		gossip = append(gossip, nt.IP(i)+":7946")
	}
	for i := 1; i <= cfg.Nodes; i++ {
		dir := ""
		if cfg.DataDir != nil {
			dir = cfg.DataDir(i)
		}
		if dir == "" {
			dir = t.TempDir()
		}
		ip := nt.IP(i)
		n := &Node{ID: i, IP: ip, Dir: dir, LogPath: filepath.Join(logs, fmt.Sprintf("node%d.log", i)), net: nt}
		n.args = []string{"serve", "--data", dir, "--node-id", fmt.Sprint(i),
			"--gossip", ip + ":7946", "--join", strings.Join(gossip, ","), "--bootstrap-expect", fmt.Sprint(cfg.Nodes),
			"--quic", n.QUIC(), "--kafka", n.Kafka(), "--http", n.HTTP(),
			"--replica-lag-max", "3s", fmt.Sprintf("--functions=%v", cfg.Functions)}
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		n.spawn(t, c.bin)
	}
	t.Cleanup(func() {
		for _, n := range c.Nodes {
			n.Kill()
		}
		if t.Failed() {
			for _, n := range c.Nodes {
				t.Logf("---- node %d log (tail) ----\n%s", n.ID, tail(n.LogPath, 60))
			}
		}
	})
	for _, n := range c.Nodes {
		n.WaitReady(t, 60*time.Second)
	}
	return c
}

func (n *Node) spawn(t testing.TB, bin string) {
	t.Helper()
	f, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "==== start %s ====\n", time.Now().Format(time.RFC3339Nano))
	// ip netns exec execs the command, so cmd.Process is wisp itself and
	// signals reach it directly.
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.net.NS(n.ID), bin}, n.args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
}

// Running reports whether the process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// WaitReady waits until the node answers /readyz.
func (n *Node) WaitReady(t testing.TB, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		if !n.Running() {
			t.Fatalf("node %d exited while starting\n%s", n.ID, tail(n.LogPath, 40))
		}
		resp, err := hc.Get("http://" + n.HTTP() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d not ready after %v\n%s", n.ID, d, tail(n.LogPath, 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *Node) signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return errors.New("not started")
	}
	return n.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL (after SIGCONT, in case it is paused) and waits for
// the exit.
func (n *Node) Kill() {
	if !n.Running() {
		return
	}
	_ = n.signal(syscall.SIGKILL)
	<-n.done
}

// Stop shuts the node down cleanly with SIGINT, or kills it after 30s.
func (n *Node) Stop(t testing.TB) {
	t.Helper()
	if !n.Running() {
		return
	}
	_ = n.signal(syscall.SIGCONT)
	_ = n.signal(syscall.SIGINT)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		n.Kill()
		t.Errorf("node %d did not stop on SIGINT within 30s", n.ID)
	}
}

// Pause stops the process with SIGSTOP; Resume continues it.
func (n *Node) Pause(t testing.TB) {
	t.Helper()
	if err := n.signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

// Resume continues a paused process.
func (n *Node) Resume(t testing.TB) {
	t.Helper()
	if err := n.signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// Start starts a stopped or killed node again on the same data directory
// and waits until it is ready.
func (c *Cluster) Start(t testing.TB, n *Node) {
	t.Helper()
	n.spawn(t, c.bin)
	n.WaitReady(t, 60*time.Second)
}

// Node returns node id (1-based).
func (c *Cluster) Node(id int) *Node { return c.Nodes[id-1] }

// KafkaBrokers lists every node's Kafka address.
func (c *Cluster) KafkaBrokers() []string {
	var s []string
	for _, n := range c.Nodes {
		s = append(s, n.Kafka())
	}
	return s
}

// CLI runs the wisp CLI against node n with a bound of 20s.
func (c *Cluster) CLI(n *Node, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args = append(args, "--insecure", "--server", n.QUIC())
	if !contains(args, "--timeout") { // fn deploy's --timeout is the module's deadline
		args = append(args, "--timeout", "5s")
	}
	cmd := exec.CommandContext(ctx, c.bin, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WISP_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "HOME="+c.home, "XDG_CONFIG_HOME="+c.home)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("wisp %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// PartitionState is one partition of `wisp topic describe --format json`.
type PartitionState struct {
	Partition     int32   `json:"partition"`
	Leader        int32   `json:"leader"`
	LeaderEpoch   int32   `json:"leader_epoch"`
	Replicas      []int32 `json:"replicas"`
	ISR           []int32 `json:"isr"`
	HighWatermark int64   `json:"high_watermark"`
}

// Describe asks node n for the partitions of topic.
func (c *Cluster) Describe(n *Node, topic string) ([]PartitionState, error) {
	out, err := c.CLI(n, "topic", "describe", topic, "--format", "json")
	if err != nil {
		return nil, err
	}
	var d struct {
		Partitions []PartitionState `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		return nil, fmt.Errorf("describe: %v: %s", err, out)
	}
	return d.Partitions, nil
}

// DescribeAny asks the running nodes in turn, skipping those in skip.
func (c *Cluster) DescribeAny(topic string, skip ...int) ([]PartitionState, error) {
	var last error = errors.New("no running node")
	for _, n := range c.Nodes {
		if !n.Running() || contains(skip, n.ID) {
			continue
		}
		ps, err := c.Describe(n, topic)
		if err == nil {
			return ps, nil
		}
		last = err
	}
	return nil, last
}

// WaitPartitions polls until cond holds for topic's partitions as every
// running node (not in skip) sees them.
func (c *Cluster) WaitPartitions(t testing.TB, topic, what string, d time.Duration, cond func([]PartitionState) bool, skip ...int) []PartitionState {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ps, err := c.describeAll(topic, cond, skip...)
		if err == nil {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %+v (%v)", d, what, ps, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// describeAll describes topic on every running node not in skip and
// returns the first answer if cond holds for all of them: a node that was
// cut off from the controller answers from stale metadata until it hears
// from it again, so one node's view is not the cluster's.
func (c *Cluster) describeAll(topic string, cond func([]PartitionState) bool, skip ...int) ([]PartitionState, error) {
	var first []PartitionState
	for _, n := range c.Nodes {
		if !n.Running() || contains(skip, n.ID) {
			continue
		}
		ps, err := c.Describe(n, topic)
		if err != nil {
			return ps, err
		}
		if !cond(ps) {
			return ps, fmt.Errorf("node %d: not yet", n.ID)
		}
		if first == nil {
			first = ps
		}
	}
	if first == nil {
		return nil, errors.New("no running node")
	}
	return first, nil
}

// FullISR holds when every partition has a leader and rf in-sync replicas.
func FullISR(rf int) func([]PartitionState) bool {
	return func(ps []PartitionState) bool {
		if len(ps) == 0 {
			return false
		}
		for _, p := range ps {
			if p.Leader <= 0 || len(p.ISR) != rf {
				return false
			}
		}
		return true
	}
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
