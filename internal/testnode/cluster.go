package testnode

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
)

// Cluster is several wisp processes forming one cluster on loopback, each
// on its own ports and data directory.
type Cluster struct {
	Nodes []*Node
}

// StartCluster starts n nodes with ids 1..n that find each other by gossip
// and bootstrap the metadata together (--bootstrap-expect n), with extra
// args for every node, and waits until each is ready. They are stopped when
// the test ends.
func StartCluster(t testing.TB, n int, extra ...string) *Cluster {
	t.Helper()
	c := &Cluster{}
	gossip := make([]string, n)
	for i := range gossip {
		gossip[i] = FreeGossip(t)
	}
	for i := 0; i < n; i++ {
		var join []string
		for j, g := range gossip {
			if j != i {
				join = append(join, g)
			}
		}
		args := append([]string{"--node-id", fmt.Sprint(i + 1), "--gossip", gossip[i],
			"--join", strings.Join(join, ","), "--bootstrap-expect", fmt.Sprint(n)}, extra...)
		node := &Node{Dir: t.TempDir(), QUIC: FreeUDP(t), Kafka: FreeTCP(t), HTTP: FreeTCP(t), Args: args, Gossip: gossip[i]}
		c.Nodes = append(c.Nodes, node)
	}
	for _, node := range c.Nodes {
		node.spawn(t)
		t.Cleanup(func() { node.Stop(t) })
	}
	for _, node := range c.Nodes {
		node.waitReady(t)
	}
	return c
}

// Node returns the node with id (1-based).
func (c *Cluster) Node(id int32) *Node { return c.Nodes[id-1] }

// Servers lists every node's QUIC address, comma-separated (for
// --server and client bootstrap lists).
func (c *Cluster) Servers() string {
	var s []string
	for _, n := range c.Nodes {
		s = append(s, n.QUIC)
	}
	return strings.Join(s, ",")
}

// KafkaBrokers lists every node's Kafka address.
func (c *Cluster) KafkaBrokers() []string {
	var s []string
	for _, n := range c.Nodes {
		s = append(s, n.Kafka)
	}
	return s
}

// Pause stops the process with SIGSTOP (it keeps its sockets but answers
// nothing); Resume continues it.
func (n *Node) Pause(t testing.TB) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

// Resume continues a paused process with SIGCONT.
func (n *Node) Resume(t testing.TB) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// Join starts one more node, with the next id, that joins the cluster
// through the gossip address of node via only (any member will do), with
// extra args, and waits until it is ready. It is stopped when the test ends.
func (c *Cluster) Join(t testing.TB, via int32, extra ...string) *Node {
	t.Helper()
	id := len(c.Nodes) + 1
	args := append([]string{"--node-id", fmt.Sprint(id), "--gossip", FreeGossip(t), "--join", c.Node(via).Gossip}, extra...)
	node := &Node{Dir: t.TempDir(), QUIC: FreeUDP(t), Kafka: FreeTCP(t), HTTP: FreeTCP(t), Args: args}
	node.Gossip = args[3]
	c.Nodes = append(c.Nodes, node)
	node.start(t)
	t.Cleanup(func() { node.Stop(t) })
	return node
}

// FreeGossip returns a loopback address whose port is free for both TCP
// and UDP, as memberlist listens on both.
func FreeGossip(t testing.TB) string {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no loopback port free for both TCP and UDP")
	return ""
}
