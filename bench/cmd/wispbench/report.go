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

	p("### Throughput and sync latency\n\n")
	p("| workload | durability: wisp · NATS | wisp | NATS JetStream | wisp ÷ NATS | CPU cores wisp, server + client | CPU cores NATS, server + client |\n")
	p("|---|---|---|---|---|---|---|\n")
	for _, x := range r.rows {
		p("| %s | %s · %s | %s | %s | %s | %s | %s |\n", x.title, x.wispDur, x.natsDur,
			rateCell(x.wisp), rateCell(x.peer), ratio(medRate(x.wisp), medRate(x.peer)), cpuPair(x.wisp), cpuPair(x.peer))
		if x.sync {
			for _, q := range []float64{50, 99} {
				p("| ↳ latency of one call, p%g | | %s | %s | %s (lower is better) | | |\n", q,
					latCell(x.wisp, q), latCell(x.peer, q), ratio(medPct(x.wisp, q), medPct(x.peer, q)))
			}
		}
	}
	p("| WASM pipeline | see docs/functions.md | | | | | |\n\n")

	if len(r.e2e) > 0 {
		e := r.e2e[0]
		p("### End-to-end latency\n\n")
		p("Both sides produce 100 B records at the same fixed rates (durability %s · %s): %s records/s, a light "+
			"load where the latency is the path itself, and a loaded rate: half wisp's async 100 B rate, capped "+
			"at a quarter of NATS's (at half its publish-only rate NATS saturates once a consumer shares the two cores, "+
			"and a saturated system's latency is its queue). A consumer on a second connection takes the time from just before the "+
			"produce call to the record's arrival (HDR histogram, 3 significant digits).\n\n",
			e.wispDur, e.natsDur, human(float64(e2eLight)))
		p("| rate | percentile | wisp | NATS JetStream | wisp ÷ NATS (lower is better) |\n|---|---|---|---|---|\n")
		lost := func(runs []run) string {
			var n, t int64
			for _, x := range runs {
				n += x.lost
				t += x.lost + x.records
			}
			return fmt.Sprintf("%d of %d", n, t)
		}
		for _, e := range r.e2e {
			rate := human(float64(e.rate)) + "/s"
			for _, q := range []float64{50, 90, 99, 99.9} {
				p("| %s | p%g | %s | %s | %s |\n", rate, q, latCell(e.wisp, q), latCell(e.peer, q), ratio(medPct(e.wisp, q), medPct(e.peer, q)))
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
		p("| WASM pipeline | see docs/functions.md | | | |\n\n")
	}

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
		"5 batches in flight, acks=all, idempotent), then `Flush`. NATS: `jetstream.PublishAsync` with at most %d "+
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
	p("- CPU is user+system time over the repetition's wall time, in cores: the server process, and the " +
		"load generator (the client of the system under test; the other system's client idles meanwhile).\n\n")

	p("### Machine\n\n")
	p("| | |\n|---|---|\n")
	p("| CPU | %s, %d cores (nproc) |\n", r.m.cpuModel, r.m.cpus)
	p("| memory | %s |\n", r.m.mem)
	p("| kernel | Linux %s |\n", r.m.kern)
	p("| data filesystem | %s |\n", r.tmpFS)
	p("| Go | %s |\n", r.m.goVersion)
	p("| wisp | %s |\n", r.m.wispRev)
	p("| peers | nats-server %s, nats.go %s, franz-go %s |\n", r.m.deps["github.com/nats-io/nats-server/v2"],
		r.m.deps["github.com/nats-io/nats.go"], r.m.deps["github.com/twmb/franz-go"])
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
