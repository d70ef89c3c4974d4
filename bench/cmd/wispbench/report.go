package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Heading is the section of docs/benchmarks.md this program owns.
const Heading = "## Side by side: wisp vs NATS JetStream"

// Goals of the suite (DESIGN.md's targets for wisp against its peer).
const (
	goalProduce = 10.0 // wisp async produce 100 B ÷ JetStream async publish
	goalConsume = 10.0 // wisp consume ÷ JetStream pull fetch
	goalAlways  = 3.0  // with fsync per write on both sides
)

func rateCell(runs []run) string {
	st := summarize(runs, run.rate)
	if !st.valid() {
		return "–"
	}
	cell := fmt.Sprintf("**%s**/s (%s–%s)", human(st.med), human(st.min), human(st.max))
	if mb := summarize(runs, run.mbps); mb.med > 0 {
		cell += ", " + sig3(mb.med) + " MB/s"
	}
	return cell
}

func latCell(runs []run, q float64) string {
	st := summarize(runs, func(r run) float64 { return r.pct(q) })
	if !st.valid() {
		return "–"
	}
	return fmt.Sprintf("**%s** (%s–%s)", micros(st.med), micros(st.min), micros(st.max))
}

// cpuPair is the median server and client CPU, in cores.
func cpuPair(runs []run) string {
	x, y := summarize(runs, run.cores), summarize(runs, run.clientCores)
	if !x.valid() {
		return "–"
	}
	return fmt.Sprintf("%.2f + %.2f", x.med, y.med)
}

func medRate(runs []run) float64 { return summarize(runs, run.rate).med }

func medPct(runs []run, q float64) float64 {
	return summarize(runs, func(r run) float64 { return r.pct(q) }).med
}

type goal struct {
	text, measured string
	met            bool
	known          bool
}

func (r *report) goals() []goal {
	var gs []goal
	ratioGoal := func(id, text string, want float64) {
		g := goal{text: text, measured: "not run"}
		if x := r.row(id); x != nil {
			a, b := medRate(x.wisp), medRate(x.peer)
			if !math.IsNaN(a) && !math.IsNaN(b) && b > 0 {
				g.known = true
				g.met = a/b >= want
				g.measured = fmt.Sprintf("%s (%s vs %s rec/s)", ratio(a, b), human(a), human(b))
			}
		}
		gs = append(gs, g)
	}
	ratioGoal("async100", fmt.Sprintf("wisp produce 100 B ≥ %.0f× JetStream async publish", goalProduce), goalProduce)
	ratioGoal("consume", fmt.Sprintf("wisp consume ≥ %.0f× JetStream pull fetch", goalConsume), goalConsume)
	g := goal{text: "wisp sync produce p50 ≤ JetStream sync publish p50", measured: "not run"}
	if x := r.row("sync"); x != nil {
		a, b := medPct(x.wisp, 50), medPct(x.peer, 50)
		if !math.IsNaN(a) && !math.IsNaN(b) {
			g.known, g.met = true, a <= b
			g.measured = fmt.Sprintf("%s vs %s (%s)", micros(a), micros(b), ratio(a, b))
		}
	}
	gs = append(gs, g)
	ratioGoal("always-async", fmt.Sprintf("fsync per write on both sides, async: wisp ≥ %.0f× JetStream", goalAlways), goalAlways)
	ratioGoal("always-sync", fmt.Sprintf("fsync per write on both sides, one at a time: wisp ≥ %.0f× JetStream", goalAlways), goalAlways)
	return gs
}

func (r *report) markdown(svgPath, mdPath string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("%s\n\n", Heading)
	p("<!-- Written by bench/cmd/wispbench (%s suite); rerun it rather than editing this section. -->\n\n", r.o.mode)
	p("Measured %s on %d cores (%s), %s suite: %s warm-up, then %d repetitions of %s per workload and system, "+
		"alternating between the systems; each figure is the median of the repetitions with (min–max). "+
		"Load average (1/5/15 min) at start **%s**, at end **%s**: on this 2-core machine any other load "+
		"lowers both columns, which is why the ratios matter more than the absolute figures. "+
		"The suite took %s.\n\n",
		r.started.UTC().Format("2006-01-02 15:04 MST"), r.m.cpus, r.m.cpuModel, r.o.mode, r.o.warm, r.o.reps, r.o.dur,
		r.loadStart, r.loadEnd, r.finished.Sub(r.started).Round(time.Second))
	if r.redisVersion != "" {
		p("Redis Streams (redis-server %s, append-only file on) is a third column on the rows where it has an "+
			"equivalent: async produce (pipelined `XADD`), consume (`XRANGE`) and async produce with fsync per write.\n\n", r.redisVersion)
	} else if r.redisSkip != "" {
		p("Redis Streams: **skipped**, %s.\n\n", r.redisSkip)
	}
	if svgPath != "" && mdPath != "" {
		rel, err := filepath.Rel(filepath.Dir(mdPath), svgPath)
		if err != nil {
			rel = svgPath
		}
		p("![wisp vs NATS JetStream: throughput and latency](%s)\n\n", filepath.ToSlash(rel))
	}

	p("### Goals\n\n| goal | measured (wisp vs NATS) | result |\n|---|---|---|\n")
	for _, g := range r.goals() {
		res := "not measured"
		if g.known {
			res = "**missed**"
			if g.met {
				res = "met"
			}
		}
		p("| %s | %s | %s |\n", g.text, g.measured, res)
	}
	p("\n")
	if x, y := r.row("sync"), r.row("ping"); x != nil && y != nil {
		sw, sn, pw, pn := medPct(x.wisp, 50), medPct(x.peer, 50), medPct(y.wisp, 50), medPct(y.peer, 50)
		// Claimed only when the round trips differ by at least half as much as the produces.
		if !math.IsNaN(sw+sn+pw+pn) && sw > sn && pw-pn >= (sw-sn)/2 {
			p("Where the sync p50 goes: a round trip carrying no record (wisp `Ping`, NATS `RTT`) has a p50 of %s on wisp "+
				"and %s on NATS here, beside sync produce p50s of %s and %s: the gap is mostly in the request round trip "+
				"every call pays (QUIC stream, client, server dispatch), not in appending the record.\n\n",
				micros(pw), micros(pn), micros(sw), micros(sn))
		}
	}

	p("### Throughput and sync latency\n\n")
	withRedis := r.redisVersion != ""
	if withRedis {
		p("| workload | durability: wisp · NATS · Redis | wisp | NATS JetStream | wisp ÷ NATS | Redis Streams | wisp ÷ Redis | " +
			"CPU cores wisp, server + client | CPU cores NATS, server + client | CPU cores Redis, server + client |\n")
		p("|---|---|---|---|---|---|---|---|---|---|\n")
	} else {
		p("| workload | durability: wisp · NATS | wisp | NATS JetStream | wisp ÷ NATS | CPU cores wisp, server + client | CPU cores NATS, server + client |\n")
		p("|---|---|---|---|---|---|---|\n")
	}
	for _, x := range r.rows {
		if withRedis {
			rd, rr, rc := "–", "–", "–"
			if x.redisWork != nil {
				rd, rr, rc = x.redisDur, rateCell(x.redis), cpuPair(x.redis)
			}
			p("| %s | %s · %s · %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", x.title, x.wispDur, x.natsDur, rd,
				rateCell(x.wisp), rateCell(x.peer), ratio(medRate(x.wisp), medRate(x.peer)),
				rr, ratio(medRate(x.wisp), medRate(x.redis)), cpuPair(x.wisp), cpuPair(x.peer), rc)
		} else {
			p("| %s | %s · %s | %s | %s | %s | %s | %s |\n", x.title, x.wispDur, x.natsDur,
				rateCell(x.wisp), rateCell(x.peer), ratio(medRate(x.wisp), medRate(x.peer)), cpuPair(x.wisp), cpuPair(x.peer))
		}
		if x.sync {
			extra := ""
			if withRedis {
				extra = " | | |" // Redis, wisp ÷ Redis, its CPU
			}
			for _, q := range []float64{50, 99} {
				p("| ↳ latency of one call, p%g | | %s | %s | %s (lower is better) | |%s |\n", q,
					latCell(x.wisp, q), latCell(x.peer, q), ratio(medPct(x.wisp, q), medPct(x.peer, q)), extra)
			}
		}
	}
	p("\nThe WASM function rows are [below](#wasm-filter-function-vs-pass-through-wisp-only), " +
		"and what three replicas cost [under Cluster](#cluster-1-replica-vs-3-and-failover).\n\n")

	if len(r.e2e) > 0 {
		e := r.e2e[0]
		p("### End-to-end latency\n\n")
		p("Both sides produce 100 B records at the same fixed rates (durability %s · %s): %s records/s, a light "+
			"load where the latency is the path itself; a loaded rate both sustain: half wisp's async 100 B rate, capped "+
			"at a quarter of NATS's (at half its publish-only rate NATS saturates once a consumer shares the two cores, "+
			"and a saturated system's latency is its queue); and, when it is higher, half wisp's async 100 B rate itself "+
			"(the \"50%% of wisp's max\" point), where a side that cannot keep up stops sending at 1.5× the "+
			"repetition and its achieved rate and unsent records show it. A consumer on a second connection takes the time from just before the "+
			"produce call to the record's arrival (HDR histogram, 3 significant digits).\n\n",
			e.wispDur, e.natsDur, human(float64(e2eLight)))
		p("| rate | percentile | wisp | NATS JetStream | wisp ÷ NATS (lower is better) |\n|---|---|---|---|---|\n")
		lost := func(runs []run) string {
			var n, t, u int64
			for _, x := range runs {
				n += x.lost
				t += x.lost + x.records
				u += x.unsent
			}
			if u > 0 {
				return fmt.Sprintf("%d of %d; **%d of the schedule not sent** (the producer fell behind)", n, t, u)
			}
			return fmt.Sprintf("%d of %d", n, t)
		}
		for _, e := range r.e2e {
			rate := human(float64(e.rate)) + "/s"
			// Latencies compare only when both sides kept the rate: a
			// side that fell behind sent fewer records into its queue.
			var behind []string
			for _, sd := range []struct {
				name string
				runs []run
			}{{"wisp", e.wisp}, {"NATS", e.peer}} {
				if m := medRate(sd.runs); !math.IsNaN(m) && m < 0.95*float64(e.rate) {
					behind = append(behind, sd.name)
				}
			}
			for _, q := range []float64{50, 90, 99, 99.9} {
				cmp := ratio(medPct(e.wisp, q), medPct(e.peer, q))
				if len(behind) > 0 {
					cmp = "not comparable: " + strings.Join(behind, " and ") + " below the rate"
				}
				p("| %s | p%g | %s | %s | %s |\n", rate, q, latCell(e.wisp, q), latCell(e.peer, q), cmp)
			}
			p("| %s | rate achieved (below the target: the producer was held back) | %s | %s | |\n", rate, rateCell(e.wisp), rateCell(e.peer))
			p("| %s | not received within 10 s | %s | %s | |\n", rate, lost(e.wisp), lost(e.peer))
			p("| %s | CPU cores, server + client | %s | %s | |\n", rate, cpuPair(e.wisp), cpuPair(e.peer))
		}
		p("\n")
	}

	if len(r.frontends) > 0 {
		p("### wisp's produce paths (100 B, flush=os)\n\n")
		p("| path | settings | wisp | ÷ native QUIC client | CPU cores, server + client |\n|---|---|---|---|---|\n")
		var quic []run
		if a := r.row("async100"); a != nil {
			quic = a.wisp
			p("| native QUIC (wisp Go client) | async, linger 5 ms, acks=all, idempotent | %s | 1× | %s |\n",
				rateCell(quic), cpuPair(quic))
		}
		for _, f := range r.frontends {
			p("| %s | %s | %s | %s | %s |\n", f.title, f.how, rateCell(f.runs), ratio(medRate(f.runs), medRate(quic)), cpuPair(f.runs))
		}
		p("\n")
	}
	r.clusterMarkdown(p)
	r.functionsMarkdown(p)

	var fails []string
	for _, x := range r.rows {
		if x.err != "" {
			fails = append(fails, fmt.Sprintf("- %s: %s", x.title, x.err))
		}
	}
	for _, e := range r.e2e {
		if e.err != "" {
			fails = append(fails, fmt.Sprintf("- %s: %s", e.title, e.err))
		}
	}
	for _, f := range r.frontends {
		if f.err != "" {
			fails = append(fails, fmt.Sprintf("- %s: %s", f.title, f.err))
		}
	}
	for _, f := range r.functions {
		if f.err != "" {
			fails = append(fails, fmt.Sprintf("- %s: %s", f.title, f.err))
		}
	}
	for _, f := range r.failovers {
		if f.err != "" {
			fails = append(fails, fmt.Sprintf("- failover, %s: %s", f.system, f.err))
		}
	}
	if r.clusterErr != "" {
		fails = append(fails, "- cluster phase: "+r.clusterErr)
	}
	if len(fails) > 0 {
		p("### Failures in this run\n\n%s\n\n", strings.Join(fails, "\n"))
	}

	p("### How it was measured\n\n")
	p("- Both servers run as child processes of the load generator, on loopback, with data in a fresh "+
		"directory on %s: wisp as `wisp serve` built from this tree (%s); NATS as nats-server %s used as a "+
		"library by the same benchmark binary (`-nats-serve`), JetStream on file storage, one replica, "+
		"no limits. The load generator (one process, the Go clients of both) shares the 2 cores with the server under test.\n",
		r.tmpFS, r.m.wispRev, r.m.deps["github.com/nats-io/nats-server/v2"])
	p("- One partition per wisp topic, one subject per NATS stream. Values are printable bytes, no keys, no compression.\n")
	p("- **Durability.** `flush=os`: wisp acknowledges once the batch is in the page cache; NATS by default " +
		"fsyncs every 2 minutes (`sync_interval`). `flush=always`: wisp fsyncs before acknowledging, one fsync " +
		"for every batch that arrived while the previous one ran (group commit); NATS `sync_interval: always` " +
		"fsyncs every write. NATS runs in a second process for that phase.\n")
	p("- **Async produce.** wisp: `client.Produce` with a promise, client defaults (linger 5 ms, 1 MiB batches, "+
		"5 batches in flight, acks=all, idempotent) but a 64 MiB buffer instead of 256 MiB (so what is still buffered when "+
		"the time is up takes about a second to deliver, not several), then `Flush`. NATS: `jetstream.PublishAsync` with at most %d "+
		"unacknowledged (`WithPublishAsyncMaxPending`), then `PublishAsyncComplete`. The rate counts "+
		"acknowledged records over the time including that final wait.\n", natsWindow)
	p("- **Sync produce.** wisp `ProduceSync` of one record; NATS `js.Publish` (waits for the PubAck). The " +
		"latency rows are per call.\n")
	p("- **Consume.** A new reader each repetition reads the \"produce async, 100 B\" data from the start "+
		"until it has everything or the repetition's time is up; creating it is timed. wisp: a consumer "+
		"without a group (commits nothing), `Poll` loop. NATS: an ephemeral pull consumer with `AckNone` "+
		"(acknowledges nothing), `Fetch(%d)` batches.\n", natsFetch)
	p("- **End-to-end.** wisp producer with linger 0 (send as soon as the connection is free), consumer " +
		"starting at the end; NATS `PublishAsync` and an ephemeral `AckNone` pull consumer iterated with " +
		"`Messages()` (pull requests kept outstanding). The send time is taken just before the produce call, so " +
		"time a producer spends blocked (NATS's window full, wisp's buffer full) is not counted: a system that " +
		"falls behind looks better than it is, and its achieved rate shows it.\n")
	if withRedis {
		p("- **Redis Streams.** redis-server %s from the distribution, a child process like the others, with "+
			"`appendonly yes` and `appendfsync everysec` (fsync once a second, Redis's default for the append-only "+
			"file) beside wisp's flush=os, and `appendfsync always` (fsync before replying, after each event-loop "+
			"batch of commands) beside flush=always, in a second process; RDB snapshots and automatic AOF rewrites "+
			"off, so no background fork competes with the workload. go-redis %s: `XADD` of one field, pipelined "+
			"from %d connections × %d commands per pipeline (at most %d unanswered, like NATS's window); consume "+
			"with `XRANGE … COUNT %d` from the start, each call after the last entry returned. Redis has no "+
			"equivalent of the sync, end-to-end and frontend rows here, and keeps the stream in memory.\n",
			r.redisVersion, r.m.deps["github.com/redis/go-redis/v9"], redisPipes, redisDepth, redisPipes*redisDepth, redisFetch)
	}
	if len(r.failovers) > 0 || r.row("r3-async") != nil {
		p("- **Cluster.** A second phase starts %d wisp nodes (`wisp serve --node-id N --gossip … --join … "+
			"--bootstrap-expect %d`, as `internal/testnode` does) and %d nats-servers routed to each other "+
			"(cluster of the library, JetStream on), all on loopback of this one machine, so the 2 cores carry %d "+
			"server processes and the load generator: the figures are what replication costs in CPU here, not "+
			"over a network. wisp: topics with replication factor %d, flush=os, acks=all (the leader acknowledges "+
			"once every in-sync replica has the batch; each row waits for a full ISR first); NATS: streams with "+
			"`Replicas: %d` (acknowledged once a quorum has it), default sync_interval. The 1-replica figures are "+
			"the single-node rows of the same run. **Failover**: a client produces one record at a time "+
			"(each call bounded by 5 s, retried at once on failure); after 200 acknowledgements the process "+
			"leading the partition (stream) gets SIGKILL, and the figure is the time from the kill to the first "+
			"acknowledgement after it. wisp's client is given every node; the NATS client is connected to a "+
			"server that stays, so its reconnect is not counted. One kill per system per run: a single sample.\n",
			clusterNodes, clusterNodes, clusterNodes, 2*clusterNodes, clusterNodes, clusterNodes)
	}
	if len(r.functions) > 0 {
		p("- **WASM function.** wisp only (NATS has no equivalent). `sdk-wasm/examples/filter` built for "+
			"wasip1 by the suite, deployed with `FIELD=type MATCH=wisp-bench`, so it parses every record's JSON "+
			"(`{\"type\":\"wisp-bench\",\"pad\":\"…\"}`, 100 B) and keeps all of them: both paths carry the "+
			"same records. Latency: as the end-to-end rows (linger 0, %s records/s), the send time in a header; "+
			"pass-through produces to a topic and reads it back, the function path produces to its input and "+
			"reads its output. Backlog: %s records are produced while nothing reads them (the function paused), "+
			"then timed until they have all come out: the function's output reaching that count, or a consumer "+
			"without a group reading them from the start.\n", human(fnRate), human(float64(r.fnBacklogN)))
	}
	p("- CPU is user+system time over the repetition's wall time, in cores: the server process (the sum of the " +
		"three in the cluster rows), and the load generator (the client of the system under test; the other " +
		"system's client idles meanwhile).\n\n")

	p("### Machine\n\n")
	p("| | |\n|---|---|\n")
	p("| CPU | %s, %d cores (nproc) |\n", r.m.cpuModel, r.m.cpus)
	p("| memory | %s |\n", r.m.mem)
	p("| kernel | Linux %s |\n", r.m.kern)
	p("| data filesystem | %s |\n", r.tmpFS)
	p("| Go | %s |\n", r.m.goVersion)
	p("| wisp | %s |\n", r.m.wispRev)
	redisPeer := ""
	if withRedis {
		redisPeer = fmt.Sprintf(", redis-server %s, go-redis %s", r.redisVersion, r.m.deps["github.com/redis/go-redis/v9"])
	}
	p("| peers | nats-server %s, nats.go %s, franz-go %s%s |\n", r.m.deps["github.com/nats-io/nats-server/v2"],
		r.m.deps["github.com/nats-io/nats.go"], r.m.deps["github.com/twmb/franz-go"], redisPeer)
	p("| date | %s |\n", r.started.UTC().Format(time.RFC3339))
	p("| load average at start · end | %s · %s |\n", r.loadStart, r.loadEnd)
	p("\nRerun: `cd bench && go run ./cmd/wispbench -%s -out ../docs/benchmarks.md` (`-full` for 5 × 10 s).\n", r.o.mode)
	return b.String()
}

// writeSection replaces the side-by-side section of path (from its heading
// to the next level-2 heading) with section, keeping the rest of the file;
// it appends the section when there is none, and creates the file.
func writeSection(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(old)
	if text == "" {
		text = "# Benchmarks\n\n"
	}
	lines := strings.SplitAfter(text, "\n")
	start, end := -1, len(lines)
	inFence := false
	for i, l := range lines {
		t := strings.TrimRight(l, "\r\n")
		if strings.HasPrefix(t, "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		if start < 0 && t == Heading {
			start = i
			continue
		}
		if start >= 0 && strings.HasPrefix(t, "## ") {
			end = i
			break
		}
	}
	var out string
	if start < 0 {
		if !strings.HasSuffix(text, "\n\n") {
			text = strings.TrimRight(text, "\n") + "\n\n"
		}
		out = text + section
	} else {
		out = strings.Join(lines[:start], "") + section
		if end < len(lines) {
			out += "\n" + strings.Join(lines[end:], "")
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

// clusterMarkdown is the cluster section: 1 replica against 3 on both
// sides, and the failover times.
func (r *report) clusterMarkdown(p func(string, ...any)) {
	a1, a3, s1, s3 := r.row("async100"), r.row("r3-async"), r.row("sync"), r.row("r3-sync")
	if a3 == nil && len(r.failovers) == 0 {
		return
	}
	p("### Cluster: 1 replica vs %d, and failover\n\n", clusterNodes)
	p("%d wisp nodes (replication factor %d, acks=all) and %d JetStream servers (R%d), all on this machine; "+
		"100 B records, flush=os · default sync_interval.\n\n", clusterNodes, clusterNodes, clusterNodes, clusterNodes)
	p("| | wisp | NATS JetStream | wisp ÷ NATS |\n|---|---|---|---|\n")
	pick := func(x *row, wisp bool) []run {
		switch {
		case x == nil:
			return nil
		case wisp:
			return x.wisp
		}
		return x.peer
	}
	rateRow := func(label string, x *row) {
		w, n := pick(x, true), pick(x, false)
		p("| %s | %s | %s | %s |\n", label, rateCell(w), rateCell(n), ratio(medRate(w), medRate(n)))
	}
	rateRow("produce async, 1 replica", a1)
	rateRow(fmt.Sprintf("produce async, %d replicas", clusterNodes), a3)
	p("| ↳ %d replicas ÷ 1 (throughput kept) | %s | %s | |\n", clusterNodes,
		ratio(medRate(pick(a3, true)), medRate(pick(a1, true))), ratio(medRate(pick(a3, false)), medRate(pick(a1, false))))
	for _, q := range []float64{50, 99} {
		latRow := func(label string, x *row) {
			w, n := pick(x, true), pick(x, false)
			p("| %s | %s | %s | %s |\n", label, latCell(w, q), latCell(n, q), ratio(medPct(w, q), medPct(n, q)))
		}
		latRow(fmt.Sprintf("produce sync p%g, 1 replica", q), s1)
		latRow(fmt.Sprintf("produce sync p%g, %d replicas", q, clusterNodes), s3)
		p("| ↳ %d replicas ÷ 1 (latency added) | %s | %s | |\n", clusterNodes,
			ratio(medPct(pick(s3, true), q), medPct(pick(s1, true), q)), ratio(medPct(pick(s3, false), q), medPct(pick(s1, false), q)))
	}
	fo := map[string]string{}
	for _, f := range r.failovers {
		if f.err != "" {
			fo[f.system] = "not measured (see failures)"
		} else {
			fo[f.system] = fmt.Sprintf("**%s** (%s)", f.took.Round(time.Millisecond), f.victim)
		}
	}
	if len(r.failovers) > 0 {
		p("| failover: leader killed → first ack | %s | %s | |\n", orDash(fo["wisp"]), orDash(fo["NATS JetStream"]))
	}
	p("\n")
}

// functionsMarkdown is the WASM section: a filter function against
// pass-through.
func (r *report) functionsMarkdown(p func(string, ...any)) {
	if len(r.functions) == 0 {
		return
	}
	p("### WASM filter function vs pass-through (wisp only)\n\n")
	p("| path | | e2e p50 at %s rec/s | p99 | p99.9 | not received | backlog of %s records: rate out | ÷ pass-through |\n",
		human(fnRate), human(float64(r.fnBacklogN)))
	p("|---|---|---|---|---|---|---|---|\n")
	pass := r.functions[0]
	for _, f := range r.functions {
		var lost, total int64
		for _, x := range f.e2e {
			lost += x.lost
			total += x.lost + x.records
		}
		p("| %s | %s | %s | %s | %s | %d of %d | %s | %s |\n", f.title, f.how, latCell(f.e2e, 50), latCell(f.e2e, 99), latCell(f.e2e, 99.9),
			lost, total, rateCell(f.drain), ratio(medRate(f.drain), medRate(pass.drain)))
	}
	p("\n")
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
