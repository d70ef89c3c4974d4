package chaos

import (
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment:
//
//	CHAOS_SEED=N        seed of the scenario draw and of every random choice (default: the time)
//	CHAOS_FULL=1        every scenario on 3 and on 5 nodes, faults held longer
//	CHAOS_SCENARIOS=a,b run these scenarios (3 nodes) instead of a draw
//	CHAOS_COUNT=N       how many scenarios the short run draws from the fast set (default 3)
//	CHAOS_SUMMARY=path  also write the summary table there
//	CI=true             a machine that cannot run the suite fails instead of skipping
func TestChaos(t *testing.T) {
	if err := Preflight(); err != nil {
		msg := fmt.Sprintf("\n*** CHAOS SUITE NOT RUN: %v ***\n*** the fault-injection suite needs root and iproute2/iptables/tc; run `sudo make chaos` ***\n", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		fmt.Fprint(os.Stderr, msg)
		t.Skip(msg)
	}
	if testing.Short() && os.Getenv("CHAOS_FULL") == "" {
		t.Skip("chaos: skipped in -short")
	}
	seed := time.Now().UnixNano() % 1_000_000
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	full := os.Getenv("CHAOS_FULL") != ""
	fmt.Fprintf(os.Stderr, "chaos: seed %d (CHAOS_SEED=%d reproduces this run)\n", seed, seed)
	t.Logf("chaos: seed %d", seed)

	type planned struct {
		sc    scenario
		nodes int
	}
	var plan []planned
	rng := rand.New(rand.NewSource(seed))
	switch {
	case os.Getenv("CHAOS_SCENARIOS") != "":
		for _, name := range strings.Split(os.Getenv("CHAOS_SCENARIOS"), ",") {
			sc, ok := byName(name)
			if !ok {
				t.Fatalf("no scenario %q", name)
			}
			plan = append(plan, planned{sc, 3})
		}
	case full:
		for _, nodes := range []int{3, 5} {
			for _, sc := range scenarios {
				plan = append(plan, planned{sc, nodes})
			}
		}
	default:
		var fast []scenario
		for _, sc := range scenarios {
			if sc.fast {
				fast = append(fast, sc)
			}
		}
		rng.Shuffle(len(fast), func(i, j int) { fast[i], fast[j] = fast[j], fast[i] })
		count := 3
		if s := os.Getenv("CHAOS_COUNT"); s != "" {
			count, _ = strconv.Atoi(s)
		}
		for _, sc := range fast[:min(count, len(fast))] {
			plan = append(plan, planned{sc, 3})
		}
	}
	hold := 6 * time.Second
	if full {
		hold = 15 * time.Second
	}

	var mu sync.Mutex
	var results []Result
	for i, p := range plan {
		name := fmt.Sprintf("%s/%dnodes", p.sc.name, p.nodes)
		t.Run(name, func(t *testing.T) {
			if p.sc.skip != "" {
				fmt.Fprintf(os.Stderr, "chaos: %s SKIPPED: %s\n", name, p.sc.skip)
				t.Skip(p.sc.skip)
			}
			r, notes := runScenario(t, p.sc, p.nodes, seed+int64(i), hold)
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
			t.Logf("%s\n%s", strings.Join(notes, "\n"), Table([]Result{r}))
		})
	}
	summary := fmt.Sprintf("chaos summary (seed %d, %s):\n\n%s", seed, map[bool]string{true: "full", false: "short"}[full], Table(results))
	fmt.Fprintln(os.Stderr, summary)
	t.Log(summary)
	if path := os.Getenv("CHAOS_SUMMARY"); path != "" {
		if err := os.WriteFile(path, []byte(summary), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func byName(name string) (scenario, bool) {
	for _, sc := range scenarios {
		if sc.name == name {
			return sc, true
		}
	}
	return scenario{}, false
}

// runScenario runs one scenario on a fresh cluster of n nodes and checks
// the result: it fails the test on any anomaly.
func runScenario(t *testing.T, sc scenario, n int, seed int64, hold time.Duration) (Result, []string) {
	nt := NewNet(t, n)
	e := &env{t: t, net: nt, topic: "chaos", rf: 3, rng: rand.New(rand.NewSource(seed)), hold: hold}
	cfg := ClusterConfig{Nodes: n, Functions: sc.functions}
	if sc.dataDir != nil {
		cfg.DataDir = func(id int) string { return sc.dataDir(e, nt, id) }
	}
	e.c = StartCluster(t, nt, cfg)
	t.Logf("cluster of %d nodes up on %s.0/24 (bridge %s)", n, nt.Subnet, nt.Bridge)

	// flush=always: a record is on disk (fsync) before the leader counts
	// it, so even the power-loss scenario must keep every ack.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := e.c.CLI(e.c.Node(1), "topic", "create", e.topic, "-p", strconv.Itoa(n), "-r", "3",
			"-c", "flush=always", "-c", "min.insync.replicas=2")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	e.c.WaitPartitions(t, e.topic, "every replica in sync", 60*time.Second, FullISR(e.rf))

	w, err := StartWorkload(e.c.KafkaBrokers(), e.topic, "chaos-"+nt.Suffix, 3, 2, 4*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	e.w = w
	t.Cleanup(w.Close)
	e.progress("before the fault", 200, 30*time.Second)
	start := time.Now()

	sc.run(e)

	e.healAll()
	e.progress("after healing", 300, 60*time.Second)
	e.c.WaitPartitions(t, e.topic, "every replica back in sync", 90*time.Second, FullISR(e.rf))
	w.StopProducers(30 * time.Second)
	end := time.Now()

	// Let followers fetch the last batches, then take the high watermarks.
	time.Sleep(2 * time.Second)
	ps := e.c.WaitPartitions(t, e.topic, "every replica in sync after the producers stopped", 60*time.Second, FullISR(e.rf))
	final := Final{Topic: e.topic, HW: map[int32]int64{}, Replicas: map[int32][]Replica{}}
	for _, p := range ps {
		final.HW[p.Partition] = p.HighWatermark
	}
	drained := w.Drain(final.HW, 30*time.Second)
	if !drained {
		e.note("the consumers did not reach every high watermark within 30s")
	}
	w.Close()

	// Stop every node cleanly and read each replica's segment files.
	var wg sync.WaitGroup
	for _, node := range e.c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); node.Stop(t) }()
	}
	wg.Wait()
	for _, p := range ps {
		reps := append([]int32(nil), p.Replicas...)
		sort.Slice(reps, func(i, j int) bool { return reps[i] == p.Leader || (reps[j] != p.Leader && reps[i] < reps[j]) })
		for _, id := range reps {
			rep, err := ReadReplica(e.c.Node(int(id)).Dir, e.topic, p.Partition, int(id))
			if err != nil {
				t.Errorf("node %d partition %d: %v", id, p.Partition, err)
			}
			final.Replicas[p.Partition] = append(final.Replicas[p.Partition], rep)
		}
	}
	r := Check(fmt.Sprintf("%s (%d nodes)", sc.name, n), w.H.Ops(), final, Window{Start: start, End: end}, drained)
	if err := r.Err(); err != nil {
		t.Error(err)
	}
	return r, e.notes
}
