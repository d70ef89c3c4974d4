package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/internal/testnode"
)

// controllerID asks node n which node leads the cluster metadata.
func controllerID(t *testing.T, n *testnode.Node) int32 {
	t.Helper()
	var st struct {
		Cluster struct {
			ControllerID int32
		} `json:"cluster"`
	}
	mustJSON(t, mustWisp(t, n, "", "cluster", "status", "--format", "json").stdout, &st)
	return st.Cluster.ControllerID
}

// tryDescribe is fnDescribe that returns the failure instead of failing.
func tryDescribe(t *testing.T, n *testnode.Node, name string) (client.FunctionDetail, error) {
	t.Helper()
	var d client.FunctionDetail
	res := wisp(t, n, "", "fn", "describe", name, "--format", "json")
	if res.code != 0 {
		return d, fmt.Errorf("fn describe on %s: %s", n.QUIC, res)
	}
	return d, json.Unmarshal([]byte(res.stdout), &d)
}

// TestClusterFunctionFailover deploys a function through a node that is
// not the metadata controller of three real nodes, streams numbered
// records into its replicated input with an idempotent producer, and kills
// the leader of an input partition with SIGKILL mid-stream, then restarts
// it. The function's worker for that partition moves to the new leader and
// resumes from the replicated committed offset: afterwards every input
// record has exactly one output (nothing lost, nothing duplicated), and
// every node describes the same deployment.
func TestClusterFunctionFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster fault test: skipped in -short")
	}
	transform := writeModule(t, "examples/transform")
	c := testnode.StartCluster(t, 3, "--replica-lag-max", "2s")
	n1 := c.Node(1)
	const in, out, fn = "numbers", "numbers-out", "passthrough"
	mustWisp(t, n1, "", "topic", "create", in, "-p", "3", "-r", "3")
	mustWisp(t, n1, "", "topic", "create", out, "-p", "3", "-r", "3")
	waitPartitions(t, n1, out, "three in-sync replicas", func(ps []partitionState) bool {
		return len(ps) == 3 && allISR(ps, 3)
	})
	ps := waitPartitions(t, n1, in, "three in-sync replicas", func(ps []partitionState) bool {
		return len(ps) == 3 && allISR(ps, 3)
	})
	leaders := map[int32]bool{}
	for _, p := range ps {
		leaders[p.Leader] = true
	}
	if len(leaders) < 2 {
		t.Fatalf("the input's partitions are all led by one node: %+v", ps)
	}

	// Deploy through a node that is not the controller: the deployment is
	// forwarded and reaches every node.
	ctl := controllerID(t, n1)
	if ctl <= 0 {
		t.Fatalf("no controller: %d", ctl)
	}
	via := c.Node(ctl%3 + 1)
	mustWisp(t, via, "", "fn", "deploy", fn, "--module", transform, "--input", in, "--output", out, "--from", "start")
	var module string
	for _, n := range c.Nodes {
		checkFor(t, 30*time.Second, func() error {
			fns := fnList(t, n)
			if len(fns) != 1 || fns[0].Name != fn || fns[0].State != "running" || fns[0].Version != 1 {
				return fmt.Errorf("fn list on %s: %+v", n.QUIC, fns)
			}
			if module == "" {
				module = fns[0].Module
			}
			if fns[0].Module != module {
				return fmt.Errorf("node %s runs module %s, another %s", n.QUIC, fns[0].Module, module)
			}
			return nil
		})
	}

	// A numbered stream, round robin over the input's partitions.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaBrokers()...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordRetries(1<<30), kgo.RequestTimeoutOverhead(2*time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.MetadataMinAge(200*time.Millisecond), kgo.ProducerLinger(2*time.Millisecond),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const total = 3000
	var (
		mu    sync.Mutex
		acked int
		errs  []error
	)
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return acked
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range total {
			cl.Produce(context.Background(), &kgo.Record{Topic: in, Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				acked++
			})
			time.Sleep(2 * time.Millisecond)
		}
	}()
	waitAcks := func(n int) {
		t.Helper()
		checkFor(t, 60*time.Second, func() error {
			if got := ackedCount(); got < n {
				return fmt.Errorf("%d of %d records acknowledged", got, n)
			}
			return nil
		})
	}

	// Mid-stream, kill the leader of input partition 0 (its worker dies
	// with it, possibly mid-unit), wait for a new leader, then restart it.
	waitAcks(total / 3)
	victimID := ps[0].Leader
	victim := c.Node(victimID)
	other := c.Node(victimID%3 + 1)
	victim.Kill(t)
	ps = waitPartitions(t, other, in, "a new leader of partition 0", func(ps []partitionState) bool {
		return ps[0].Leader != victimID && ps[0].Leader > 0
	})
	t.Logf("node %d killed; node %d leads %s/0 at epoch %d", victimID, ps[0].Leader, in, ps[0].LeaderEpoch)
	waitAcks(2 * total / 3)
	victim.Restart(t)
	waitPartitions(t, other, in, "the restarted node back in the ISR", func(ps []partitionState) bool { return allISR(ps, 3) })

	wg.Wait()
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(errs) > 0 || acked != total {
		t.Fatalf("%d of %d records acknowledged; errors: %v", acked, total, errs)
	}
	mu.Unlock()

	// The function catches up: on every node, each input partition's
	// committed offset reaches its high watermark.
	for _, n := range c.Nodes {
		checkFor(t, 90*time.Second, func() error {
			d, err := tryDescribe(t, n, fn)
			if err != nil {
				return err
			}
			var committed int64
			for _, p := range d.Partitions {
				if p.Committed != p.HighWatermark {
					return fmt.Errorf("node %s: partition %d committed %d of %d", n.QUIC, p.Partition, p.Committed, p.HighWatermark)
				}
				committed += p.Committed
			}
			if committed != total {
				return fmt.Errorf("node %s: %d of %d input records committed", n.QUIC, committed, total)
			}
			return nil
		})
	}

	// Exactly one output per input record.
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaBrokers()...), kgo.ConsumeTopics(out),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[int]int{}
	outputs := 0
	deadline := time.Now().Add(60 * time.Second)
	for len(seen) < total && time.Now().Before(deadline) {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fs := cons.PollFetches(fctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			v, err := strconv.Atoi(string(r.Value))
			if err != nil {
				t.Errorf("output %s/%d@%d is not a number: %q", r.Topic, r.Partition, r.Offset, r.Value)
				return
			}
			seen[v]++
			outputs++
		})
	}
	// Whatever else is there arrives within a short poll.
	fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	cons.PollFetches(fctx).EachRecord(func(r *kgo.Record) {
		v, _ := strconv.Atoi(string(r.Value))
		seen[v]++
		outputs++
	})
	cancel()
	var missing, dups []int
	for i := range total {
		switch seen[i] {
		case 0:
			missing = append(missing, i)
		case 1:
		default:
			dups = append(dups, i)
		}
	}
	if len(missing) > 0 || len(dups) > 0 || outputs != total {
		t.Fatalf("%d outputs for %d inputs: %d missing (first %v), %d duplicated (first %v)",
			outputs, total, len(missing), head(missing), len(dups), head(dups))
	}

	// Every node describes the same deployment.
	var first client.FunctionDetail
	for i, n := range c.Nodes {
		d := fnDescribe(t, n, fn)
		if d.State != "running" || d.Version != 1 || d.Module != module || d.Input != in ||
			!slices.Equal(d.Outputs, []string{out}) || len(d.Partitions) != 3 {
			t.Fatalf("fn describe on node %d: %+v", i+1, d)
		}
		if i == 0 {
			first = d
			continue
		}
		a, _ := json.Marshal(first.Spec)
		b, _ := json.Marshal(d.Spec)
		if string(a) != string(b) {
			t.Fatalf("node %d's manifest %s differs from node 1's %s", i+1, b, a)
		}
	}
}

func head(xs []int) []int { return xs[:min(len(xs), 10)] }
