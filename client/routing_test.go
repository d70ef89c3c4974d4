package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/transport"
	"github.com/wispbus/wisp/transport/wire"
)

// Routing tests on real single-node servers: the client's metadata cache
// is made stale on purpose (it names a leader that is gone, or a node that
// does not have the partition), and the client must find the real leader
// through a metadata refresh, without losing, duplicating or reordering
// records.

// deadUDP returns a loopback UDP address nothing listens on.
func deadUDP(t testing.TB) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

// startBareNode starts a node with the given id that creates no topics on
// its own: produce and fetch to it for another node's topic fail with
// UNKNOWN_TOPIC_OR_PARTITION, as a node that is not (or no longer) a
// replica would answer.
func startBareNode(t testing.TB, id int32) string {
	t.Helper()
	dir := t.TempDir()
	bcfg := bus.DefaultConfig()
	bcfg.DataDir = dir
	bcfg.NodeID = id
	bcfg.AutoCreateTopics = false
	bcfg.Logger = quietLogger()
	b, err := bus.Open(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	tcfg := transport.DefaultConfig()
	tcfg.Addr = "127.0.0.1:0"
	tcfg.DataDir = dir
	tcfg.Logger = quietLogger()
	srv, err := transport.NewServer(tcfg, b)
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		_ = b.Close()
	})
	return srv.Addr().String()
}

// misdirect makes the client believe that node id, at addr, leads every
// partition of topic.
func misdirect(c *Client, topic string, partitions int, id int32, addr string) {
	resp := &wire.MetadataResponse{NodeID: id, Nodes: []wire.Node{{NodeID: id, Addrs: map[string]string{"quic": addr}}}}
	tm := wire.TopicMeta{Name: topic}
	for p := range partitions {
		tm.Partitions = append(tm.Partitions, wire.PartitionMeta{Partition: int32(p), Leader: id, LeaderEpoch: 99})
	}
	resp.Topics = []wire.TopicMeta{tm}
	c.meta.learn(resp, "")
}

func TestServersCommaSeparated(t *testing.T) {
	n := startNode(t, map[string]string{"flush": "os"})
	ctx := testCtx(t, 20*time.Second)
	dead := deadUDP(t)
	c, err := New(ctx, Servers(dead+", "+n.addr), DialTimeout(300*time.Millisecond), Logger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if want := []string{dead, n.addr}; !slices.Equal(c.cfg.servers, want) {
		t.Fatalf("servers %v, want %v", c.cfg.servers, want)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestMetadataCacheLearnsLeaders(t *testing.T) {
	n := startNode(t, map[string]string{"flush": "os"})
	ctx := testCtx(t, 20*time.Second)
	c := n.client(t)
	if _, err := c.CreateTopic(ctx, TopicSpec{Name: "learn", Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	info, err := c.DescribeTopic(ctx, "learn")
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(3) {
		leader, _, ok := c.meta.leader("learn", p)
		if !ok || leader != info.Partitions[p].Leader {
			t.Fatalf("partition %d: cached leader %d (%v), metadata says %d", p, leader, ok, info.Partitions[p].Leader)
		}
	}
	// The answering node is reached at the seed address.
	if addr, ok := c.meta.nodeAddr(info.Partitions[0].Leader); !ok || addr != n.addr {
		t.Fatalf("node address %q (%v), want %q", addr, ok, n.addr)
	}
}

// checkLog asks the node for every record of topic and checks they are
// exactly want, in order, per partition.
func checkLog(t *testing.T, c *Client, topic string, want map[int32][]string) {
	t.Helper()
	ctx := testCtx(t, 20*time.Second)
	var parts []int32
	for p := range want {
		parts = append(parts, p)
	}
	k, err := c.NewConsumer(ctx, Partitions(topic, parts...))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(ctx)
	got := map[int32][]string{}
	total := 0
	for _, vs := range want {
		total += len(vs)
	}
	for n := 0; n < total; {
		recs, err := k.Poll(ctx)
		if err != nil {
			t.Fatalf("after %d of %d records: %v", n, total, err)
		}
		for _, r := range recs {
			got[r.Partition] = append(got[r.Partition], string(r.Value))
			n++
		}
	}
	for p, vs := range want {
		if !slices.Equal(got[p], vs) {
			t.Fatalf("partition %d: got %d records %v..., want %d", p, len(got[p]), got[p][:min(5, len(got[p]))], len(vs))
		}
	}
}

func TestProduceRetriesOnNewLeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		// The named leader is gone: dialing it fails.
		{"leader gone", func(t *testing.T) string { return deadUDP(t) }},
		// The named leader is up but has no such partition.
		{"not a replica", func(t *testing.T) string { return startBareNode(t, 7) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t, map[string]string{"flush": "os"})
			ctx := testCtx(t, 30*time.Second)
			c := n.client(t, DialTimeout(300*time.Millisecond), RetryBackoff(20*time.Millisecond),
				Linger(time.Millisecond))
			if _, err := c.CreateTopic(ctx, TopicSpec{Name: "moved", Partitions: 2}); err != nil {
				t.Fatal(err)
			}
			want := map[int32][]string{}
			produce := func(from, to int) {
				t.Helper()
				var recs []*Record
				for i := from; i < to; i++ {
					recs = append(recs, &Record{Topic: "moved", Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprint(i))})
				}
				if err := c.ProduceSync(ctx, recs...); err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					want[r.Partition] = append(want[r.Partition], string(r.Value))
				}
			}
			produce(0, 100) // streams open to the real leader
			misdirect(c, "moved", 2, 7, tc.addr(t))
			produce(100, 600)
			if leader, _, ok := c.meta.leader("moved", 0); !ok || leader == 7 {
				t.Fatalf("leader still %d (%v) after the retries", leader, ok)
			}
			checkLog(t, c, "moved", want)
		})
	}
}

func TestConsumerMovesToNewLeader(t *testing.T) {
	n := startNode(t, map[string]string{"flush": "os"})
	ctx := testCtx(t, 30*time.Second)
	c := n.client(t, DialTimeout(300*time.Millisecond), RetryBackoff(20*time.Millisecond),
		RecordPartitioner(ManualPartitioner()))
	if _, err := c.CreateTopic(ctx, TopicSpec{Name: "follow", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	k, err := c.NewConsumer(ctx, Topics("follow"))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(ctx)
	bare := startBareNode(t, 7)
	seen := map[int32]int64{0: -1, 1: -1}
	got := 0
	consume := func(total int) {
		t.Helper()
		for got < total {
			recs, err := k.Poll(ctx)
			if err != nil {
				t.Fatalf("after %d of %d: %v", got, total, err)
			}
			for _, r := range recs {
				if r.Offset != seen[r.Partition]+1 {
					t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, seen[r.Partition])
				}
				seen[r.Partition] = r.Offset
				got++
			}
		}
	}
	produce := func(from, to int) {
		t.Helper()
		var recs []*Record
		for i := from; i < to; i++ {
			recs = append(recs, &Record{Topic: "follow", Partition: int32(i % 2), Value: []byte(fmt.Sprint(i))})
		}
		if err := c.ProduceSync(ctx, recs...); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 100)
	consume(100)
	// The metadata now names node 7 (which has no such partition): the
	// sessions move there, fail, and come back after a refresh.
	misdirect(c, "follow", 2, 7, bare)
	produce(100, 300)
	consume(300)
	misdirect(c, "follow", 2, 8, deadUDP(t))
	produce(300, 500)
	consume(500)
	select {
	case r := <-k.chunks:
		t.Fatalf("extra records queued: %d from %s/%d", len(r.recs), r.cp.tp.topic, r.cp.tp.partition)
	default:
	}
}

func TestGrouplessConsumerPicksUpNewPartitions(t *testing.T) {
	n := startNode(t, map[string]string{"flush": "os"})
	ctx := testCtx(t, 30*time.Second)
	c := n.client(t, RecordPartitioner(ManualPartitioner()))
	if _, err := c.CreateTopic(ctx, TopicSpec{Name: "grows", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	k, err := c.NewConsumer(ctx, Topics("grows"), StartOffset(AtEnd()))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(ctx)
	if err := c.AddPartitions(ctx, "grows", 3); err != nil {
		t.Fatal(err)
	}
	// Any metadata answer updates the cache; the periodic refresh would
	// too, within 30s.
	if _, err := c.DescribeTopic(ctx, "grows"); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, "3 partitions assigned", func() bool { return len(k.Assignment()["grows"]) == 3 })
	// Records produced to the new partitions before the consumer saw them
	// are read too: new partitions start at their beginning.
	if err := c.ProduceSync(ctx, &Record{Topic: "grows", Partition: 1, Value: []byte("one")},
		&Record{Topic: "grows", Partition: 2, Value: []byte("two")}); err != nil {
		t.Fatal(err)
	}
	got := map[int32]string{}
	for len(got) < 2 {
		recs, err := k.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			got[r.Partition] = string(r.Value)
		}
	}
	if got[1] != "one" || got[2] != "two" {
		t.Fatalf("got %v", got)
	}
}

func TestGroupRequestsGoToCoordinator(t *testing.T) {
	n := startNode(t, map[string]string{"flush": "os"})
	ctx := testCtx(t, 30*time.Second)
	c := n.client(t)
	if err := c.CommitGroupOffsets(ctx, "coord", map[string]map[int32]int64{"ct": {0: 3}}); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	addr, ok := c.coord["coord"]
	c.mu.Unlock()
	if !ok || addr != n.addr {
		t.Fatalf("coordinator of group coord cached as %q (%v), want %q", addr, ok, n.addr)
	}
	offs, err := c.GroupOffsets(ctx, "coord")
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) != 1 || offs[0].Committed != 3 {
		t.Fatalf("offsets %+v", offs)
	}
}

// Nodes learned from the metadata get their own TLS configuration, built
// with the same trust settings as the seeds but for their own address: the
// name verified is theirs, and known-hosts pins are per address.
func TestDiscoveredNodesTLS(t *testing.T) {
	certA, certB := selfSignedDER(t), selfSignedDER(t)
	kh := t.TempDir() + "/known_hosts"
	cfg := defaultCfg()
	cfg.knownHosts = kh
	cfg.insecure = true
	c := &Client{cfg: cfg, clientState: &clientState{tlsByAddr: map[string]*tls.Config{}}}
	c.mu.Lock()
	seed, err := c.tlsForLocked("10.0.0.1:7070")
	if err != nil {
		t.Fatal(err)
	}
	other, err := c.tlsForLocked("10.0.0.2:7070")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := c.tlsForLocked("10.0.0.2:7070")
	c.mu.Unlock()
	if seed.ServerName != "10.0.0.1" || other.ServerName != "10.0.0.2" || again != other {
		t.Fatalf("server names %q %q (cached %v)", seed.ServerName, other.ServerName, again == other)
	}
	// --insecure pins each node's certificate on first use, per address.
	if err := seed.VerifyPeerCertificate([][]byte{certA}, nil); err != nil {
		t.Fatal(err)
	}
	if err := other.VerifyPeerCertificate([][]byte{certB}, nil); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"10.0.0.1:7070", "10.0.0.2:7070"} {
		if _, ok, err := lookupKnownHost(kh, addr); err != nil || !ok {
			t.Fatalf("%s not pinned: %v", addr, err)
		}
	}
}
