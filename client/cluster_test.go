package client

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wispbus/wisp/internal/testnode"
)

// A real 3-node cluster (separate `wisp serve` processes on loopback): an
// idempotent acks=all producer runs throughout while the leader of a
// partition is killed with SIGKILL and restarted, twice, then another is
// frozen with SIGSTOP and resumed; then every
// acknowledged record must be in the log exactly once, at the offset it
// was acknowledged with, and each partition in production order.

type cluster struct{ *testnode.Cluster }

func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	return &cluster{testnode.StartCluster(t, n, "--topic-default", "flush=os")}
}

func (cl *cluster) logs() string {
	var sb strings.Builder
	for i, n := range cl.Nodes {
		fmt.Fprintf(&sb, "---- node %d ----\n%s\n", i+1, n.Logs())
	}
	return sb.String()
}

// healthy waits until every partition of topic has a leader and a full
// ISR, and returns the leaders.
func (cl *cluster) healthy(t *testing.T, c *Client, topic string, parts, rf int) []int32 {
	t.Helper()
	var leaders []int32
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		info, err := c.DescribeTopic(ctx, topic)
		cancel()
		ok := err == nil && len(info.Partitions) == parts
		leaders = leaders[:0]
		for _, p := range info.Partitions {
			if p.Leader < 1 || len(p.ISR) < rf {
				ok = false
			}
			leaders = append(leaders, p.Leader)
		}
		if ok {
			return leaders
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s not healthy after 60s: %+v %v\n%s", topic, info, err, cl.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestClusterFailoverKeepsAcknowledgedRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	const topic, parts = "failover", 3
	cl := startCluster(t, 3)
	ctx := testCtx(t, 4*time.Minute)
	c, err := New(ctx, Servers(cl.Servers()), Logger(quietLogger()), RetryBackoff(50*time.Millisecond),
		RequestTimeout(10*time.Second), DeliveryTimeout(3*time.Minute), Linger(2*time.Millisecond),
		RecordPartitioner(RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkFor(t, 60*time.Second, "topic created", func() bool {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := c.CreateTopic(cctx, TopicSpec{Name: topic, Partitions: parts, ReplicationFactor: 3})
		if err != nil {
			t.Logf("create topic: %v", err)
		}
		return err == nil
	})
	cl.healthy(t, c, topic, parts, 3)

	// A group member consumes throughout, on its own client: its fetch
	// sessions follow the leaders, its group requests the coordinator.
	cc, err := New(ctx, Servers(cl.Servers()), Logger(quietLogger()), RetryBackoff(50*time.Millisecond),
		RequestTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	live, err := cc.NewConsumer(ctx, Topics(topic), Group("live"), HeartbeatInterval(500*time.Millisecond),
		SessionTimeout(6*time.Second), AutoCommitInterval(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var liveMu sync.Mutex
	liveSeen := map[int32]map[int64]bool{}
	liveDup := 0
	liveCtx, liveStop := context.WithCancel(ctx)
	var liveWG sync.WaitGroup
	liveWG.Add(1)
	go func() {
		defer liveWG.Done()
		for r, err := range live.Records(liveCtx) {
			if err != nil {
				if liveCtx.Err() != nil {
					return
				}
				t.Logf("live consumer: %v", err)
				continue
			}
			liveMu.Lock()
			if liveSeen[r.Partition] == nil {
				liveSeen[r.Partition] = map[int64]bool{}
			}
			if liveSeen[r.Partition][r.Offset] {
				liveDup++
			}
			liveSeen[r.Partition][r.Offset] = true
			liveMu.Unlock()
		}
	}()

	// The producer: values are a global sequence, so a partition's
	// values must increase.
	type ack struct {
		offset int64
		seq    int
	}
	var mu sync.Mutex
	acked := map[int32][]ack{}
	var failed []error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c.Produce(ctx, &Record{Topic: topic, Value: []byte(strconv.Itoa(i))}, func(r *Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed = append(failed, err)
					return
				}
				acked[r.Partition] = append(acked[r.Partition], ack{r.Offset, i})
			})
			if i%20 == 19 {
				time.Sleep(2 * time.Millisecond) // ~10k records/s
			}
		}
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, as := range acked {
			n += len(as)
		}
		return n
	}
	countPart := func(p int32) int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked[p])
	}
	progress := func(what string) {
		t.Helper()
		from := count()
		checkFor(t, 60*time.Second, what, func() bool { return count() > from+2000 })
	}
	// partProgress waits for new acknowledgements on partition p.
	partProgress := func(p int32, what string) {
		t.Helper()
		from := countPart(p)
		checkFor(t, 60*time.Second, what, func() bool { return countPart(p) > from+200 })
	}
	progress("records acknowledged before the first kill")
	checkFor(t, 60*time.Second, "the live consumer assigned every partition", func() bool {
		return len(live.Assignment()[topic]) == parts
	})
	// Kill -9 the leader of partition 0, then of partition 1 (restarting
	// each), then freeze the leader of partition 2 with SIGSTOP: a node
	// that keeps its sockets but answers nothing, not even QUIC
	// keep-alives, until it is resumed (and finds itself deposed).
	for round, p := range []int32{0, 1, 2} {
		leaders := cl.healthy(t, c, topic, parts, 3)
		victim := cl.Node(leaders[p])
		how := "killing"
		if p == 2 {
			how = "pausing"
		}
		t.Logf("round %d: %s node %d, leader of partition %d (leaders %v); %d acked so far",
			round, how, leaders[p], p, leaders, count())
		hit := time.Now()
		if p == 2 {
			victim.Pause(t)
		} else {
			victim.Kill(t)
		}
		partProgress(p, fmt.Sprintf("partition %d acknowledging with node %d gone", p, leaders[p]))
		t.Logf("round %d: partition %d acknowledging again %v after", round, p, time.Since(hit).Round(time.Millisecond))
		if p == 2 {
			victim.Resume(t)
		} else {
			victim.Restart(t)
		}
		cl.healthy(t, c, topic, parts, 3)
		progress(fmt.Sprintf("records acknowledged after node %d came back", leaders[p]))
	}
	close(stop)
	wg.Wait()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(failed) > 0 {
		t.Errorf("%d records failed; first: %v", len(failed), failed[0])
	}
	mu.Unlock()
	cl.healthy(t, c, topic, parts, 3)

	// Every acknowledged record, exactly once, at its offset, in order.
	k, err := c.NewConsumer(ctx, Topics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(ctx)
	want := map[int32]int64{} // per partition, the offset after the last ack
	total := 0
	for p, as := range acked {
		for _, a := range as {
			want[p] = max(want[p], a.offset+1)
		}
		total += len(as)
	}
	got := map[int32][]*Record{}
	done := func() bool {
		for p, end := range want {
			if n := len(got[p]); n == 0 || got[p][n-1].Offset+1 < end {
				return false
			}
		}
		return true
	}
	for !done() {
		recs, err := k.Poll(ctx)
		if err != nil {
			t.Fatalf("consuming: %v", err)
		}
		for _, r := range recs {
			got[r.Partition] = append(got[r.Partition], r)
		}
	}
	seen := map[string]bool{}
	for p, recs := range got {
		last := -1
		byOffset := map[int64]int{}
		for _, r := range recs {
			seq, err := strconv.Atoi(string(r.Value))
			if err != nil {
				t.Fatalf("%s/%d@%d: value %q", topic, p, r.Offset, r.Value)
			}
			if seen[string(r.Value)] {
				t.Fatalf("record %d written twice (again at %s/%d@%d)", seq, topic, p, r.Offset)
			}
			seen[string(r.Value)] = true
			if seq <= last {
				t.Fatalf("partition %d out of order: %d after %d at offset %d", p, seq, last, r.Offset)
			}
			last = seq
			byOffset[r.Offset] = seq
		}
		for _, a := range acked[p] {
			if s, ok := byOffset[a.offset]; !ok || s != a.seq {
				t.Fatalf("acknowledged record %d at %s/%d@%d: log has %d (%v)", a.seq, topic, p, a.offset, s, ok)
			}
		}
	}
	t.Logf("%d records acknowledged, all present once and in order; %d batches resent", total, c.prod.resent.Load())

	// The live member saw every acknowledged record (at least once: a
	// rebalance or a coordinator move may deliver some again).
	liveMissing := func() (int32, int64, bool) {
		liveMu.Lock()
		defer liveMu.Unlock()
		for p, as := range acked {
			for _, a := range as {
				if !liveSeen[p][a.offset] {
					return p, a.offset, true
				}
			}
		}
		return 0, 0, false
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		p, off, missing := liveMissing()
		if !missing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live consumer never got %s/%d@%d; assignment %v", topic, p, off, live.Assignment())
		}
		time.Sleep(50 * time.Millisecond)
	}
	liveStop()
	liveWG.Wait()
	if err := live.Close(ctx); err != nil {
		t.Errorf("closing the live consumer: %v", err)
	}
	t.Logf("live group consumer saw every acknowledged record; %d delivered twice", liveDup)
}
