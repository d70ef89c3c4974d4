package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wispbus/wisp/internal/testnode"
)

// TestClusterNodeJoins grows a running 3-node cluster by a fourth node that
// knows only one member's gossip address (not the first node's): the
// fourth node must become part of the metadata, receive replicas of topics
// created afterwards, catch up with their data byte for byte, and answer
// metadata and serve clients that know only it.
func TestClusterNodeJoins(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped in -short")
	}
	c := testnode.StartCluster(t, 3, "--functions=false")
	n4 := c.Join(t, 3, "--functions=false")

	// Every node, the newcomer included, sees four registered, live nodes.
	for _, n := range c.Nodes {
		waitClusterNodes(t, n, 4)
	}

	const parts = 8
	mustWisp(t, n4, "", "topic", "create", "after", "-p", strconv.Itoa(parts), "-r", "3")
	ps := waitPartitions(t, c.Node(1), "after", "eight partitions with three in-sync replicas", func(ps []partitionState) bool {
		return len(ps) == parts && allISR(ps, 3)
	})
	var mine []int32
	for _, p := range ps {
		if slices.Contains(p.Replicas, 4) {
			mine = append(mine, p.Partition)
		}
	}
	if len(mine) == 0 {
		t.Fatalf("the new node holds no replica of a topic created after it joined: %+v", ps)
	}

	// A client bootstrapped from the newcomer alone produces to every
	// partition (wherever its leader is) and reads everything back.
	cl, err := kgo.NewClient(kgo.SeedBrokers(n4.Kafka), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ConsumeTopics("after"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const perPart = 50
	for p := range int32(parts) {
		for i := range perPart {
			r := &kgo.Record{Topic: "after", Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce to partition %d through the new node: %v", p, err)
			}
		}
	}
	seen := map[string]bool{}
	for len(seen) < parts*perPart {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records back through the new node: %v", len(seen), parts*perPart, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if seen[string(r.Value)] {
				t.Errorf("record %s read twice", r.Value)
			}
			seen[string(r.Value)] = true
		})
	}

	// The newcomer's replicas catch up: every partition's high watermark
	// (as its leader reports it: a node without a replica has no offsets)
	// covers what was written, with all three replicas in sync, and the
	// logs on disk are identical to the leader's.
	for _, n := range c.Nodes {
		id := int32(slices.Index(c.Nodes, n) + 1)
		waitPartitions(t, n, "after", fmt.Sprintf("node %d's partitions complete and in sync", id), func(ps []partitionState) bool {
			for _, p := range ps {
				if p.Leader == id && (p.HighWatermark != perPart || len(p.ISR) != 3) {
					return false
				}
			}
			return true
		})
	}
	cl.Close()
	for _, n := range c.Nodes {
		n.Stop(t)
	}
	for _, p := range ps {
		want := readLogs(t, filepath.Join(c.Node(p.Leader).Dir, "topics", "after", strconv.Itoa(int(p.Partition))))
		for _, r := range p.Replicas {
			got := readLogs(t, filepath.Join(c.Node(r).Dir, "topics", "after", strconv.Itoa(int(p.Partition))))
			if string(got) != string(want) {
				t.Errorf("partition %d: node %d's log (%d bytes) differs from leader %d's (%d bytes)", p.Partition, r, len(got), p.Leader, len(want))
			}
		}
	}
	t.Logf("node 4 holds replicas of partitions %v", mine)
}

// waitClusterNodes polls `wisp cluster status` on n until it lists want
// registered nodes, all alive in gossip and all with a raft role.
func waitClusterNodes(t *testing.T, n *testnode.Node, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		res := wisp(t, n, "", "cluster", "status", "--format", "json")
		last = res.String()
		var st struct {
			Cluster *struct {
				ControllerID int32
				Nodes        []struct {
					ID         int32
					Gossip     string
					Raft       string
					Registered bool
				}
			} `json:"cluster"`
		}
		if res.code == 0 && json.Unmarshal([]byte(res.stdout), &st) == nil && st.Cluster != nil && st.Cluster.ControllerID > 0 {
			ok := 0
			for _, m := range st.Cluster.Nodes {
				if m.Registered && m.Gossip == "alive" && m.Raft != "" {
					ok++
				}
			}
			if ok == want {
				return
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("node %s never saw %d live registered nodes: %s", n.QUIC, want, last)
}
