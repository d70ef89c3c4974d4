package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/transport"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// tnode is one in-process node: a real broker, QUIC server and cluster
// node on loopback.
type tnode struct {
	id     int32
	dir    string
	quic   string
	gossip string // bind address; a concrete port after the first start
	join   []string
	expect int
	cap    int
	key    []byte

	b    *bus.Broker
	srv  *transport.Server
	node *Node
	rec  *recorder
}

func newTNode(t *testing.T, id int32, join []string, expect int) *tnode {
	return &tnode{id: id, dir: t.TempDir(), quic: freeUDP(t), gossip: "127.0.0.1:0", join: join, expect: expect, cap: 3}
}

func (n *tnode) start(t *testing.T) {
	t.Helper()
	bcfg := bus.DefaultConfig()
	bcfg.DataDir = filepath.Join(n.dir, "broker")
	bcfg.NodeID = n.id
	bcfg.Logger = testLogger()
	b, err := bus.Open(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	tcfg := transport.DefaultConfig()
	tcfg.Addr = n.quic
	tcfg.DataDir = n.dir
	tcfg.Logger = testLogger()
	srv, err := transport.NewServer(tcfg, b)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.NodeID = n.id
	cfg.DataDir = n.dir
	cfg.GossipBind = n.gossip
	cfg.Join = n.join
	cfg.BootstrapExpect = n.expect
	cfg.VoterCap = n.cap
	cfg.GossipKey = n.key
	cfg.QUICAddr = n.quic
	cfg.KafkaAddr = fmt.Sprintf("127.0.0.1:%d", 9090+n.id)
	cfg.Logger = testLogger()
	n.rec = newRecorder()
	node, err := Start(cfg, srv, n.rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	n.b, n.srv, n.node = b, srv, node
	n.gossip = node.GossipAddr()
}

func (n *tnode) stop(t *testing.T) {
	t.Helper()
	if n.node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.node.Close(ctx); err != nil {
		t.Errorf("node %d close: %v", n.id, err)
	}
	if err := n.srv.Close(ctx); err != nil {
		t.Errorf("node %d transport close: %v", n.id, err)
	}
	if err := n.b.Close(); err != nil {
		t.Errorf("node %d broker close: %v", n.id, err)
	}
	n.node = nil
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func raftServers(t *testing.T, n *Node) map[int32]raft.ServerSuffrage {
	t.Helper()
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil
	}
	out := map[int32]raft.ServerSuffrage{}
	for _, s := range f.Configuration().Servers {
		out[parseServerID(s.ID)] = s.Suffrage
	}
	return out
}

func topicJSON(ts bus.TopicState, ok bool) string {
	if !ok {
		return "<none>"
	}
	b, _ := json.Marshal(ts)
	return string(b)
}

// agreeOn waits until every node's applier holds the same state of topic
// as its metadata, and returns it.
func agreeOn(t *testing.T, nodes []*tnode, topic string) bus.TopicState {
	t.Helper()
	var want bus.TopicState
	waitFor(t, 15*time.Second, "all appliers to agree on "+topic, func() bool {
		ts, ok := nodes[0].node.Topic(topic)
		if !ok {
			return false
		}
		for _, n := range nodes {
			got, ok := n.rec.topic(topic)
			if topicJSON(got, ok) != topicJSON(ts, true) {
				return false
			}
		}
		want = ts
		return true
	})
	return want
}

func TestClusterThreeNodes(t *testing.T) {
	n1 := newTNode(t, 1, nil, 3)
	n1.start(t)
	n2 := newTNode(t, 2, []string{n1.gossip}, 3)
	n2.start(t)
	n3 := newTNode(t, 3, []string{n1.gossip}, 3)
	n3.start(t)
	all := []*tnode{n1, n2, n3}
	var n4 *tnode
	defer func() {
		for _, n := range append(all, n4) {
			if n != nil {
				n.stop(t)
			}
		}
	}()

	// Bootstrap-expect 3 forms one group of three voters, one controller.
	waitFor(t, 20*time.Second, "one controller known to all", func() bool {
		c := n1.node.ControllerID()
		return c > 0 && n2.node.ControllerID() == c && n3.node.ControllerID() == c
	})
	waitFor(t, 10*time.Second, "three voters", func() bool {
		s := raftServers(t, n1.node)
		return len(s) == 3 && s[1] == raft.Voter && s[2] == raft.Voter && s[3] == raft.Voter
	})
	byID := func(id int32) *tnode {
		for _, n := range all {
			if n.id == id {
				return n
			}
		}
		if n4 != nil && n4.id == id {
			return n4
		}
		return nil
	}
	ctrl := byID(n1.node.ControllerID())
	var follower *tnode
	for _, n := range all {
		if n != ctrl {
			follower = n
			break
		}
	}
	// The controller registers the nodes it sees in gossip.
	waitFor(t, 10*time.Second, "3 registered nodes on the follower", func() bool {
		ns := follower.node.Nodes()
		return len(ns) == 3 && ns[2].QUIC == n3.quic && ns[2].Kafka == "127.0.0.1:9093" && ns[2].Alive
	})

	if ni, ok := follower.node.Node(3); !ok || ni.QUIC != n3.quic {
		t.Fatalf("Node(3) = %+v %v", ni, ok)
	}
	if _, ok := follower.node.Node(42); ok {
		t.Fatal("Node(42) found")
	}

	// CreateTopic on a follower returns once it is applied there.
	if err := follower.node.CreateTopic(ctx(t), bus.TopicSpec{Name: "orders", Partitions: 3, ReplicationFactor: 3}); err != nil {
		t.Fatal(err)
	}
	ts, ok := follower.node.Topic("orders")
	if !ok {
		t.Fatal("created topic not in the follower's metadata on return")
	}
	if got, ok := follower.rec.topic("orders"); !ok || topicJSON(got, ok) != topicJSON(ts, true) {
		t.Fatal("created topic not applied on the follower on return")
	}
	leaders := map[int32]int{}
	for _, p := range ts.Partitions {
		if len(p.Replicas) != 3 || p.Leader != p.Replicas[0] || !slices.Equal(p.ISR, p.Replicas) {
			t.Fatalf("partition %+v", p)
		}
		leaders[p.Leader]++
	}
	if len(leaders) != 3 {
		t.Fatalf("leaders not spread: %v", leaders)
	}
	agreeOn(t, all, "orders")

	// Errors cross the forwarding hop as kerr errors.
	if err := follower.node.CreateTopic(ctx(t), bus.TopicSpec{Name: "orders"}); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create again: %v", err)
	}
	if err := follower.node.CreateTopic(ctx(t), bus.TopicSpec{Name: "big", ReplicationFactor: 4}); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Fatalf("rf 4 of 3 nodes: %v", err)
	}
	if err := follower.node.AddPartitions(ctx(t), "nope", 2); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("add partitions unknown: %v", err)
	}

	// AlterISR: the leader shrinks; a stale epoch is fenced; a non-leader
	// is refused.
	p0 := ts.Partitions[0]
	leader := byID(p0.Leader)
	other := byID(p0.Replicas[1])
	if err := leader.node.AlterISR(ctx(t), "orders", 0, p0.LeaderEpoch, []int32{p0.Leader, p0.Replicas[1]}); err != nil {
		t.Fatal(err)
	}
	if got, _ := leader.node.Topic("orders"); !slices.Equal(got.Partitions[0].ISR, []int32{p0.Leader, p0.Replicas[1]}) {
		t.Fatalf("ISR after AlterISR: %v", got.Partitions[0].ISR)
	}
	if err := leader.node.AlterISR(ctx(t), "orders", 0, p0.LeaderEpoch-1, []int32{p0.Leader}); !errors.Is(err, kerr.FencedLeaderEpoch) {
		t.Fatalf("stale epoch: %v", err)
	}
	if err := other.node.AlterISR(ctx(t), "orders", 0, p0.LeaderEpoch, []int32{other.id}); !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("not the leader: %v", err)
	}
	if err := leader.node.AlterISR(ctx(t), "orders", 0, p0.LeaderEpoch, p0.Replicas); err != nil {
		t.Fatal(err)
	}

	// Configs and partitions.
	if err := follower.node.AlterTopicConfigs(ctx(t), "orders", map[string]string{"retention.ms": "60000"}, true); err != nil {
		t.Fatal(err)
	}
	if err := follower.node.AlterTopicConfigs(ctx(t), "orders", map[string]string{"nope": "1"}, true); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("unknown config: %v", err)
	}
	if err := follower.node.AddPartitions(ctx(t), "orders", 4); err != nil {
		t.Fatal(err)
	}
	ts = agreeOn(t, all, "orders")
	if len(ts.Partitions) != 4 || ts.Configs["retention.ms"] != "60000" {
		t.Fatalf("orders after alter: %+v", ts)
	}

	// Producer id blocks never overlap across nodes.
	type block struct{ first, n int64 }
	var (
		mu     sync.Mutex
		blocks []block
		wg     sync.WaitGroup
	)
	for _, n := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				size := int64(100 + i)
				first, err := n.node.AllocateProducerIDs(context.Background(), size)
				if err != nil {
					t.Errorf("node %d allocate: %v", n.id, err)
					return
				}
				mu.Lock()
				blocks = append(blocks, block{first, size})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(blocks, func(i, j int) bool { return blocks[i].first < blocks[j].first })
	for i := 1; i < len(blocks); i++ {
		if blocks[i-1].first+blocks[i-1].n > blocks[i].first {
			t.Fatalf("producer id blocks overlap: %+v %+v", blocks[i-1], blocks[i])
		}
	}
	if len(blocks) != 30 {
		t.Fatalf("%d blocks", len(blocks))
	}

	// A 4th node joins through a member that is not the seed: beyond the
	// voter cap it is a non-voter, and new topics place replicas on it.
	n4 = newTNode(t, 4, []string{n3.gossip}, 3)
	n4.start(t)
	waitFor(t, 20*time.Second, "node 4 a non-voter", func() bool {
		return raftServers(t, n1.node)[4] == raft.Nonvoter
	})
	waitFor(t, 10*time.Second, "node 4 registered and alive", func() bool {
		for _, ni := range follower.node.Nodes() {
			if ni.ID == 4 && ni.Alive {
				return true
			}
		}
		return false
	})
	if err := n4.node.CreateTopic(ctx(t), bus.TopicSpec{Name: "after4", Partitions: 4, ReplicationFactor: 3}); err != nil {
		t.Fatal(err)
	}
	all4 := []*tnode{n1, n2, n3, n4}
	after4 := agreeOn(t, all4, "after4")
	on4 := 0
	for _, p := range after4.Partitions {
		if slices.Contains(p.Replicas, 4) {
			on4++
		}
	}
	if on4 != 3 { // 4 partitions x 3 replicas over 4 nodes, round robin
		t.Fatalf("node 4 holds %d replicas of after4: %+v", on4, after4.Partitions)
	}
	if _, ok := n4.rec.topic("orders"); !ok {
		t.Fatal("node 4 did not get the earlier topic")
	}

	// Closing the controller: a new controller is elected, and the
	// partitions the old one led get new leaders with bumped epochs.
	ctrl = byID(n1.node.ControllerID())
	type led struct {
		topic string
		part  int32
		epoch int32
	}
	var ledByCtrl []led
	for _, name := range []string{"orders", "after4"} {
		ts, _ := ctrl.node.Topic(name)
		for _, p := range ts.Partitions {
			if p.Leader == ctrl.id {
				ledByCtrl = append(ledByCtrl, led{name, p.Partition, p.LeaderEpoch})
			}
		}
	}
	if len(ledByCtrl) == 0 {
		t.Fatal("the controller leads no partition")
	}
	ctrl.stop(t)
	var rest []*tnode
	for _, n := range all4 {
		if n != ctrl {
			rest = append(rest, n)
		}
	}
	waitFor(t, 15*time.Second, "a new controller", func() bool {
		c := rest[0].node.ControllerID()
		if c <= 0 || c == ctrl.id {
			return false
		}
		for _, n := range rest {
			if n.node.ControllerID() != c {
				return false
			}
		}
		return true
	})
	waitFor(t, 15*time.Second, "new leaders for the old controller's partitions", func() bool {
		for _, n := range rest {
			for _, l := range ledByCtrl {
				ts, ok := n.rec.topic(l.topic)
				if !ok {
					return false
				}
				p := ts.Partitions[l.part]
				if p.Leader == ctrl.id || p.Leader < 0 || p.LeaderEpoch <= l.epoch || slices.Contains(p.ISR, ctrl.id) {
					return false
				}
			}
		}
		return true
	})
	// The departed node left gracefully: it is out of the Raft group, and
	// the non-voter took its vote.
	waitFor(t, 15*time.Second, "raft group without the old controller, node 4 promoted", func() bool {
		s := raftServers(t, rest[0].node)
		_, in := s[ctrl.id]
		return !in && s[4] == raft.Voter && len(s) == 3
	})
	st := rest[0].node.Status()
	if st.ControllerID <= 0 || st.Topics != 2 || st.Partitions != 8 || st.OfflinePartitions != 0 || st.UnderReplicatedPartitions == 0 {
		t.Fatalf("status %+v", st)
	}

	// The old controller restarts on its data dir: it rejoins, and its
	// applier gets the topics, current leaders included.
	ctrl.start(t)
	waitFor(t, 20*time.Second, "restarted node back in the raft group", func() bool {
		_, in := raftServers(t, rest[0].node)[ctrl.id]
		return in
	})
	agreeOn(t, all4, "orders")
	agreeOn(t, all4, "after4")
}

// TestRestartRecoversFromDisk restarts a single-node cluster: the state
// comes back from the Raft snapshot and log on disk.
func TestRestartRecoversFromDisk(t *testing.T) {
	n := newTNode(t, 1, nil, 1)
	n.start(t)
	defer n.stop(t)
	waitFor(t, 10*time.Second, "controller", func() bool { return n.node.ControllerID() == 1 })
	if err := n.node.CreateTopic(ctx(t), bus.TopicSpec{Name: "a", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	first, err := n.node.AllocateProducerIDs(ctx(t), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.node.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	// After the snapshot: only in the log.
	if err := n.node.CreateTopic(ctx(t), bus.TopicSpec{Name: "b", Configs: map[string]string{"flush": "os"}}); err != nil {
		t.Fatal(err)
	}
	if err := n.node.DeleteTopic(ctx(t), "a"); err != nil {
		t.Fatal(err)
	}
	if err := n.node.CreateTopic(ctx(t), bus.TopicSpec{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	want := topicJSON(n.node.Topic("b"))
	n.stop(t)

	n.start(t)
	waitFor(t, 10*time.Second, "controller after restart", func() bool { return n.node.ControllerID() == 1 })
	waitFor(t, 10*time.Second, "state replayed", func() bool {
		_, a := n.rec.topic("a")
		_, c := n.rec.topic("c")
		return !a && c && topicJSON(n.rec.topic("b")) == want
	})
	next, err := n.node.AllocateProducerIDs(ctx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if next < first+1000 {
		t.Fatalf("producer id %d reused after restart (first block %d+1000)", next, first)
	}
	if err := n.node.CreateTopic(ctx(t), bus.TopicSpec{Name: "b"}); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create b again: %v", err)
	}
}

// crash stops a node as kill -9 would look to the others: no leadership
// transfer, no gossip leave.
func (n *tnode) crash(t *testing.T) {
	t.Helper()
	n.node.closed.Store(true)
	if err := n.node.stop(false); err != nil {
		t.Errorf("node %d crash: %v", n.id, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = n.srv.Close(ctx)
	_ = n.b.Close()
	n.node = nil
}

// TestClusterCrashFailover crashes the controller: gossip declares it
// dead, the survivors elect a controller, and its partitions move to
// ISR members with bumped epochs. It stays a Raft member (it may come
// back) and, restarted, is alive again.
func TestClusterCrashFailover(t *testing.T) {
	n1 := newTNode(t, 1, nil, 3)
	n1.start(t)
	n2 := newTNode(t, 2, []string{n1.gossip}, 3)
	n2.start(t)
	n3 := newTNode(t, 3, []string{n2.gossip}, 3)
	n3.start(t)
	all := []*tnode{n1, n2, n3}
	defer func() {
		for _, n := range all {
			n.stop(t)
		}
	}()
	waitFor(t, 20*time.Second, "controller", func() bool {
		c := n1.node.ControllerID()
		return c > 0 && n2.node.ControllerID() == c && n3.node.ControllerID() == c
	})
	if err := n2.node.CreateTopic(ctx(t), bus.TopicSpec{Name: "t", Partitions: 3, ReplicationFactor: 3}); err != nil {
		t.Fatal(err)
	}
	before := agreeOn(t, all, "t")
	victim := all[n1.node.ControllerID()-1]
	var rest []*tnode
	for _, n := range all {
		if n != victim {
			rest = append(rest, n)
		}
	}
	victim.crash(t)

	waitFor(t, 15*time.Second, "a new controller", func() bool {
		c := rest[0].node.ControllerID()
		return c > 0 && c != victim.id && rest[1].node.ControllerID() == c
	})
	waitFor(t, 15*time.Second, "the crashed node's partitions moved", func() bool {
		for _, n := range rest {
			ts, ok := n.rec.topic("t")
			if !ok {
				return false
			}
			for i, p := range ts.Partitions {
				old := before.Partitions[i]
				if slices.Contains(p.ISR, victim.id) || p.Leader < 0 || p.Leader == victim.id {
					return false
				}
				if old.Leader == victim.id && p.LeaderEpoch != old.LeaderEpoch+1 {
					return false
				}
				if old.Leader != victim.id && p.LeaderEpoch != old.LeaderEpoch {
					return false
				}
			}
		}
		return true
	})
	if _, in := raftServers(t, rest[0].node)[victim.id]; !in {
		t.Fatal("a crashed (not departed) node was removed from the raft group")
	}
	// Every node's gossip declares the victim dead in its own time.
	var st Status
	waitFor(t, 15*time.Second, "status showing the crash", func() bool {
		st = rest[0].node.Status()
		if st.UnderReplicatedPartitions != 3 || st.OfflinePartitions != 0 {
			return false
		}
		for _, ns := range st.Nodes {
			if ns.ID == victim.id {
				return !ns.Alive && ns.Gossip == "dead" && ns.Raft == "voter" && ns.Registered
			}
		}
		return false
	})
	// Writes still work with two of three voters.
	if err := rest[1].node.CreateTopic(ctx(t), bus.TopicSpec{Name: "u", ReplicationFactor: 2}); err != nil {
		t.Fatal(err)
	}

	// It cannot be removed while alive; once dead it can.
	if err := rest[0].node.RemoveNode(ctx(t), rest[1].id); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("remove a live node: %v", err)
	}
	if err := rest[0].node.RemoveNode(ctx(t), victim.id); err != nil {
		t.Fatal(err)
	}
	if _, in := raftServers(t, rest[1].node)[victim.id]; in {
		t.Fatal("removed node still in the raft group")
	}
	for _, ni := range rest[0].node.Nodes() {
		if ni.ID == victim.id {
			t.Fatal("removed node still registered")
		}
	}

	// Restarted without Join, it finds gossip again through the gossip
	// addresses in its metadata, and is added and registered again.
	victim.join = nil
	victim.start(t)
	waitFor(t, 20*time.Second, "the restarted node alive again", func() bool {
		for _, ni := range rest[0].node.Nodes() {
			if ni.ID == victim.id {
				return ni.Alive
			}
		}
		return false
	})
	waitFor(t, 20*time.Second, "the restarted node back in the raft group", func() bool {
		return raftServers(t, rest[0].node)[victim.id] == raft.Voter
	})
	agreeOn(t, all, "u")
	agreeOn(t, all, "t")
}

// TestPeerAuthentication: with a gossip key, node-to-node streams carry a
// token bound to the TLS session; a peer without the key is cut off.
func TestPeerAuthentication(t *testing.T) {
	key := []byte("0123456789abcdef")
	n1 := newTNode(t, 1, nil, 2)
	n1.key = key
	n1.start(t)
	n2 := newTNode(t, 2, []string{n1.gossip}, 2)
	n2.key = key
	n2.start(t)
	defer n1.stop(t)
	defer n2.stop(t)
	waitFor(t, 20*time.Second, "controller", func() bool {
		c := n1.node.ControllerID()
		return c > 0 && n2.node.ControllerID() == c
	})
	// Writes forwarded between keyed nodes work.
	for _, n := range []*tnode{n1, n2} {
		if _, err := n.node.AllocateProducerIDs(ctx(t), 10); err != nil {
			t.Fatal(err)
		}
	}
	ctrl := n1
	if n2.node.ControllerID() == 2 {
		ctrl = n2
	}

	// A stranger with its own QUIC endpoint.
	stranger := newTNode(t, 9, nil, 1)
	bcfg := bus.DefaultConfig()
	bcfg.DataDir = filepath.Join(stranger.dir, "broker")
	bcfg.Logger = testLogger()
	b, err := bus.Open(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tcfg := transport.DefaultConfig()
	tcfg.Addr = stranger.quic
	tcfg.DataDir = stranger.dir
	tcfg.Logger = testLogger()
	srv, err := transport.NewServer(tcfg, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())

	ask := func(k []byte) (response, error) {
		p := newPeers(srv, k)
		defer p.close()
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sc, err := p.open(c, ctrl.quic, streamControl)
		if err != nil {
			return response{}, err
		}
		defer sc.Close()
		_ = sc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := writeFrame(sc, request{Op: opAllocatePIDs, N: 1, From: 9}); err != nil {
			return response{}, err
		}
		var resp response
		err = readFrame(sc, &resp)
		return resp, err
	}
	for _, k := range [][]byte{nil, []byte("fedcba9876543210")} {
		if resp, err := ask(k); err == nil {
			t.Fatalf("key %q: a stranger got an answer %+v", k, resp)
		}
	}
	// The same endpoint with the key is served (the check is the token,
	// not the address).
	resp, err := ask(key)
	if err != nil || decodeError(resp) != nil || resp.Index == 0 {
		t.Fatalf("with the key: %+v %v", resp, err)
	}
}
