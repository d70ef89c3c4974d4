package chaos

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wispbus/wisp/wasm/wasmtest"
)

// env is what a scenario's nemesis works with.
type env struct {
	t     *testing.T
	c     *Cluster
	net   *Net
	topic string
	rf    int
	w     *Workload
	rng   *rand.Rand
	hold  time.Duration // how long a fault is held
	notes []string
}

func (e *env) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	e.notes = append(e.notes, s)
	e.t.Log(s)
}

// partitions describes the topic as a running node sees it.
func (e *env) partitions(skip ...int) []PartitionState {
	e.t.Helper()
	return e.c.WaitPartitions(e.t, e.topic, "a description of the topic", 30*time.Second, func(ps []PartitionState) bool {
		for _, p := range ps {
			if p.Leader <= 0 {
				return false
			}
		}
		return len(ps) > 0
	}, skip...)
}

// leader is the leader of a random partition.
func (e *env) leader() (int32, int) {
	ps := e.partitions()
	p := ps[e.rng.Intn(len(ps))]
	return p.Partition, int(p.Leader)
}

// follower is a follower of a random partition.
func (e *env) follower() (int32, int) {
	ps := e.partitions()
	p := ps[e.rng.Intn(len(ps))]
	for _, r := range p.Replicas {
		if r != p.Leader {
			return p.Partition, int(r)
		}
	}
	e.t.Fatalf("partition %d has no follower: %+v", p.Partition, p)
	return 0, 0
}

// others lists every node but the given ones.
func (e *env) others(not ...int) []int {
	var s []int
	for _, n := range e.c.Nodes {
		if !contains(not, n.ID) {
			s = append(s, n.ID)
		}
	}
	return s
}

// progress waits until n more records are acknowledged.
func (e *env) progress(what string, n int, d time.Duration) {
	e.t.Helper()
	before := e.w.H.Acked()
	deadline := time.Now().Add(d)
	for e.w.H.Acked() < before+n {
		if time.Now().After(deadline) {
			e.t.Fatalf("no progress %s: %d acks in %v (wanted %d)", what, e.w.H.Acked()-before, d, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sleep holds a fault while the workload runs.
func (e *env) sleep(d time.Duration) { time.Sleep(d) }

// healAll undoes every fault: network rules, paused and stopped nodes.
func (e *env) healAll() {
	e.net.Heal(e.t)
	for _, n := range e.c.Nodes {
		if n.Running() {
			_ = n.signal(syscall.SIGCONT)
		}
	}
	for _, n := range e.c.Nodes {
		if !n.Running() {
			e.c.Start(e.t, n)
		}
	}
}

// scenario is one named fault.
type scenario struct {
	name string
	fast bool // in the set the short run draws from
	// skip, when set, is why the scenario cannot run here.
	skip      string
	functions bool
	// dataDir gives a node a special data directory.
	dataDir func(e *env, nt *Net, id int) string
	run     func(e *env)
}

var scenarios = []scenario{
	{name: "kill-leader", fast: true, run: func(e *env) {
		p, l := e.leader()
		e.note("kill -9 node %d (leader of partition %d)", l, p)
		e.c.Node(l).Kill()
		e.sleep(e.hold)
		e.c.Start(e.t, e.c.Node(l))
	}},
	{name: "kill-follower", fast: true, run: func(e *env) {
		p, f := e.follower()
		e.note("kill -9 node %d (follower of partition %d)", f, p)
		e.c.Node(f).Kill()
		e.sleep(e.hold)
		e.c.Start(e.t, e.c.Node(f))
	}},
	{name: "pause-leader", fast: true, run: func(e *env) {
		p, l := e.leader()
		e.note("SIGSTOP node %d (leader of partition %d) for %v", l, p, e.hold)
		e.c.Node(l).Pause(e.t)
		e.sleep(e.hold)
		e.c.Node(l).Resume(e.t)
	}},
	{name: "pause-follower", fast: true, run: func(e *env) {
		p, f := e.follower()
		e.note("SIGSTOP node %d (follower of partition %d) for %v", f, p, e.hold)
		e.c.Node(f).Pause(e.t)
		e.sleep(e.hold)
		e.c.Node(f).Resume(e.t)
	}},
	{name: "isolate-leader", fast: true, run: isolateLeader},
	{name: "split-majority-minority", fast: true, run: func(e *env) {
		ids := e.others()
		e.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		minority, majority := ids[:len(ids)/2], ids[len(ids)/2:]
		e.note("partition %v | %v for %v", minority, majority, e.hold)
		for _, m := range minority {
			e.net.Drop(e.t, m, majority, true, true)
		}
		e.sleep(e.hold)
		e.net.Heal(e.t)
	}},
	{name: "one-way-drop", fast: true, run: func(e *env) {
		p, l := e.leader()
		e.note("node %d (leader of partition %d) hears nothing from its peers (it still sends) for %v", l, p, e.hold)
		e.net.Drop(e.t, l, e.others(l), true, false)
		e.sleep(e.hold)
		e.net.Heal(e.t)
	}},
	{name: "netem-loss-latency", fast: true, run: func(e *env) {
		spec := "delay 30ms 15ms loss 5%"
		if err := e.net.Netem(1, spec); err != nil {
			// This kernel has no sch_netem (CONFIG_NET_SCH_NETEM): drop 5%
			// at random with iptables and queue behind a token bucket.
			e.note("tc netem unavailable (%v): 5%% random loss (iptables statistic) and a 4mbit token bucket on every node for %v", err, 2*e.hold)
			for _, n := range e.c.Nodes {
				e.net.Degrade(e.t, n.ID, 0.05, "4mbit")
			}
		} else {
			e.note("tc netem %q on every node for %v", spec, 2*e.hold)
			for _, n := range e.c.Nodes[1:] {
				if err := e.net.Netem(n.ID, spec); err != nil {
					e.t.Fatal(err)
				}
			}
		}
		e.sleep(2 * e.hold)
		e.net.Heal(e.t)
	}},
	{name: "power-loss", fast: true, run: func(e *env) {
		e.note("kill -9 every node at once, restart all")
		for _, n := range e.c.Nodes {
			go n.Kill()
		}
		for _, n := range e.c.Nodes {
			for n.Running() {
				time.Sleep(10 * time.Millisecond)
			}
		}
		e.sleep(time.Second)
		for _, n := range e.c.Nodes {
			n.spawn(e.t, e.c.bin)
		}
		for _, n := range e.c.Nodes {
			n.WaitReady(e.t, 60*time.Second)
		}
	}},
	{name: "rolling-restart", fast: true, run: func(e *env) {
		for _, n := range e.c.Nodes {
			e.note("restart node %d (SIGINT)", n.ID)
			n.Stop(e.t)
			e.c.Start(e.t, n)
			e.c.WaitPartitions(e.t, e.topic, fmt.Sprintf("node %d back in every ISR", n.ID), 90*time.Second, FullISR(e.rf))
		}
	}},
	{name: "disk-full", dataDir: diskFullDir, run: diskFull},
	{name: "clock-jump", skip: "cannot move one process's wall clock without moving the host's: Linux time namespaces (unshare --time) " +
		"offset only CLOCK_MONOTONIC and CLOCK_BOOTTIME, not CLOCK_REALTIME, and faketime's LD_PRELOAD does not reach a static Go binary " +
		"(its vDSO clock_gettime); the host clock is not to be changed"},
	{name: "wasm-runaway", functions: true, run: wasmRunaway},
}

// isolateLeader cuts the leader of a partition off from its peers (the
// test process still reaches it) and checks that a producer that can reach
// only the isolated node gets no acknowledgement while it is isolated.
func isolateLeader(e *env) {
	p, l := e.leader()
	e.note("isolate node %d (leader of partition %d) from its peers for %v", l, p, e.hold)
	e.net.Drop(e.t, l, e.others(l), true, true)
	isoStart := time.Now()
	pinned, err := StartPinnedProducer(e.c.Node(l).Kafka(), e.topic, p, "iso", e.w.H, 20*time.Millisecond)
	if err != nil {
		e.t.Fatal(err)
	}
	e.sleep(e.hold)
	pinned.Close()
	isoEnd := time.Now()
	sent, acked := 0, 0
	for _, op := range e.w.H.Ops() {
		if op.Process != "iso" || op.Kind != Send {
			continue
		}
		switch op.Outcome {
		case Invoke:
			sent++
		case OK:
			acked++
			if !op.Time.Before(isoStart) && !op.Time.After(isoEnd) {
				e.t.Errorf("the isolated old leader (node %d) acknowledged %s at %d/%d at %s, while cut off from every peer",
					l, op.ID, op.Partition, op.Offset, op.Time.Format("15:04:05.000"))
			}
		}
	}
	e.note("producer pinned to the isolated node: %d sent, %d acknowledged", sent, acked)
	e.net.Heal(e.t)
	// Asked of the others: the old leader's own metadata is stale until
	// it hears from the controller again.
	e.c.WaitPartitions(e.t, e.topic, fmt.Sprintf("node %d back in every ISR", l), 90*time.Second, FullISR(e.rf), l)
	// The old leader appended what the pinned producer sent but could not
	// commit it: to follow the new leader it must cut that tail off (and
	// the checker then finds its log identical to the others'). Polled:
	// the log line and the others' view of the ISR are not one event.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if strings.Contains(readFile(e.c.Node(l).LogPath), "truncating a diverged log") {
			e.note("node %d truncated its diverged log to rejoin", l)
			break
		}
		if sent == 0 {
			break
		}
		if time.Now().After(deadline) {
			e.t.Errorf("node %d rejoined without truncating the %d records sent to it while isolated", l, sent)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// diskFullDir puts node 2's data on a 512 MiB tmpfs.
func diskFullDir(e *env, nt *Net, id int) string {
	if id != 2 {
		return ""
	}
	return nt.Tmpfs(e.t, "node2", 512<<20)
}

// diskFull fills node 2's filesystem while the workload runs, then frees it.
func diskFull(e *env) {
	n := e.c.Node(2)
	filler := filepath.Join(n.Dir, "filler")
	var st syscall.Statfs_t
	if err := syscall.Statfs(n.Dir, &st); err != nil {
		e.t.Fatal(err)
	}
	f, err := os.Create(filler)
	if err != nil {
		e.t.Fatal(err)
	}
	// Most of the space at once, the rest by writing to the last page.
	if free := int64(st.Bavail)*st.Bsize - 1<<20; free > 0 {
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, free); err != nil {
			e.t.Logf("fallocate %d: %v", free, err)
		}
	}
	// Take whatever is left to the last page.
	for _, chunk := range []int{1 << 20, 4096} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				break
			}
		}
	}
	f.Close()
	_ = syscall.Statfs(n.Dir, &st)
	e.note("node 2's data filesystem full (%d bytes free) for %v", int64(st.Bavail)*st.Bsize, e.hold)
	e.sleep(e.hold)
	if !n.Running() {
		e.note("node 2 exited while its disk was full:\n%s", tail(n.LogPath, 5))
	}
	var enospc []string
	for _, line := range strings.Split(readFile(n.LogPath), "\n") {
		if strings.Contains(line, "no space left") {
			enospc = append(enospc, line)
		}
	}
	if len(enospc) > 0 {
		e.note("node 2 logged %d lines with ENOSPC, the first: %s", len(enospc), enospc[0])
	} else {
		e.note("node 2 logged no ENOSPC error")
	}
	e.progress("with node 2's disk full", 100, 60*time.Second)
	if err := os.Remove(filler); err != nil {
		e.t.Fatal(err)
	}
	e.note("freed node 2's filesystem")
}

// wasmRunaway deploys a function that loops forever on the record "loop"
// (sdk-wasm/testdata/evil) with a 1s deadline and a dead-letter topic,
// feeds it that record, and checks that the deadline kills it (the record
// reaches the DLQ) while the broker keeps acknowledging the workload.
func wasmRunaway(e *env) {
	mod := filepath.Join(e.t.TempDir(), "evil.wasm")
	if err := os.WriteFile(mod, wasmtest.Build(e.t, "testdata/evil"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	n1 := e.c.Node(1)
	for _, topic := range []string{"fn-in", "fn-out", "fn-dlq"} {
		if _, err := e.c.CLI(n1, "topic", "create", topic, "-p", "1", "-r", "3"); err != nil {
			e.t.Fatal(err)
		}
	}
	if out, err := e.c.CLI(n1, "fn", "deploy", "runaway", "--module", mod, "--input", "fn-in", "--output", "fn-out",
		"--dlq", "fn-dlq", "--timeout", "1s", "--from", "start"); err != nil {
		e.t.Fatalf("%v\n%s", err, out)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.c.KafkaBrokers()...), kgo.ConsumeTopics("fn-dlq", "fn-out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, v := range []string{"loop", "after-loop"} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "fn-in", Value: []byte(v)}).FirstErr(); err != nil {
			e.t.Fatal(err)
		}
	}
	start := time.Now()
	e.note("deployed a function that loops forever on %q (deadline 1s, DLQ fn-dlq)", "loop")
	ackedBefore := e.w.H.Acked()
	var dlq, out bool
	for !(dlq && out) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			fnState, _ := e.c.CLI(n1, "fn", "describe", "runaway")
			e.t.Fatalf("runaway function: record in DLQ %v, later record in the output %v after 90s\n%s", dlq, out, fnState)
		}
		fs.EachRecord(func(r *kgo.Record) {
			switch {
			case r.Topic == "fn-dlq" && string(r.Value) == "loop":
				dlq = true
				var hs []string
				for _, h := range r.Headers {
					hs = append(hs, h.Key+"="+string(h.Value))
				}
				e.note("the looping record reached the DLQ after %v, headers %v", time.Since(start).Round(100*time.Millisecond), hs)
			case r.Topic == "fn-out" && string(r.Value) == "after-loop":
				out = true
			}
		})
	}
	e.note("the workload got %d acknowledgements meanwhile", e.w.H.Acked()-ackedBefore)
	e.progress("after the runaway function", 200, 30*time.Second)
	for _, n := range e.c.Nodes {
		if !n.Running() {
			e.t.Errorf("node %d died during the runaway function", n.ID)
		}
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
