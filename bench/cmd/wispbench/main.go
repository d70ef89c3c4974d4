// Command wispbench runs the same workloads against wisp and NATS
// JetStream on this machine and writes the side-by-side table into
// docs/benchmarks.md (the "## Side by side: wisp vs NATS JetStream"
// section; the rest of the file is kept) and a chart into
// docs/benchmarks.svg.
//
// Both servers run as child processes in a temporary directory on free
// loopback ports: wisp is `wisp serve` (built from ../cmd/wisp, or
// -wisp-bin), NATS is nats-server used as a library by this same binary
// (-nats-serve), with JetStream on file storage, one replica. The load
// generator (this process) drives both through their Go clients.
//
// Where redis-server is installed (Debian: apt-get install redis-server),
// Redis Streams is a third system on the rows it has an equivalent for
// (pipelined XADD, XRANGE consume, and XADD with appendfsync always): a
// redis-server child process per phase, append-only file on (see
// redis.go). Without it, the report says Redis was skipped; -no-redis
// leaves it out on purpose.
//
//	cd bench && go run ./cmd/wispbench -short -out ../docs/benchmarks.md
//	cd bench && go run ./cmd/wispbench -full -out ../docs/benchmarks.md
//
// -short (the default): a 0.5 s warm-up then 3 repetitions of 1.5 s per
// workload and system, under 5 minutes with Redis, the WASM rows and the
// 3-node clusters on the shared 2-core machine (each of which cost some
// of the repetitions' length: it was 3 s with two systems). -full: 2 s
// warm-up, 5 × 10 s: quote its figures.
// Repetitions of the two systems alternate, so a change in the machine's
// load during the run hits both. Figures are medians with min–max.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type options struct {
	reps      int
	dur, warm time.Duration
	mode      string
	e2eRate   int
	only      map[string]bool
	noRedis   bool
}

func main() {
	var (
		natsServe = flag.Bool("nats-serve", false, "internal: run a NATS server (used by the suite itself)")
		natsAddr  = flag.String("nats-addr", "", "internal: -nats-serve listen address")
		natsDir   = flag.String("nats-dir", "", "internal: -nats-serve JetStream store directory")
		natsSync  = flag.Bool("nats-sync-always", false, "internal: -nats-serve with sync_interval: always")
		natsName  = flag.String("nats-name", "", "internal: -nats-serve server name in a cluster")
		natsClus  = flag.String("nats-cluster", "", "internal: -nats-serve cluster (route) listen address")
		natsRts   = flag.String("nats-routes", "", "internal: -nats-serve routes of the other cluster members, comma-separated")
		short     = flag.Bool("short", false, "short suite: 0.5 s warm-up, 3 repetitions of 1.5 s (the default)")
		full      = flag.Bool("full", false, "full suite: 2 s warm-up, 5 repetitions of 10 s")
		out       = flag.String("out", "", "markdown file whose side-by-side section is (re)written; empty prints the section")
		svgOut    = flag.String("svg", "", "SVG chart to write (default: benchmarks.svg beside -out; none without -out)")
		wispBin   = flag.String("wisp-bin", "", "wisp binary to run (default: go build ../cmd/wisp into the temp dir)")
		dir       = flag.String("dir", "", "parent of the temporary data directories (default: $TMPDIR); must be a real disk, not tmpfs")
		keep      = flag.Bool("keep", false, "keep the temporary directory (data and server logs)")
		reps      = flag.Int("reps", 0, "override the repetitions")
		dur       = flag.Duration("dur", 0, "override the duration of one repetition")
		e2eRate   = flag.Int("e2e-rate", 0, "override the e2e latency rate in records/s (default: half the slower system's async 100 B rate)")
		only      = flag.String("only", "", "comma-separated workloads to run (async100,async1k,sync,consume,e2e,frontends,functions,always,cluster); for development")
		natsWin   = flag.Int("nats-window", natsWindow, "PublishAsync max pending")
		natsBatch = flag.Int("nats-fetch", natsFetch, "pull Fetch batch size")
		noRedis   = flag.Bool("no-redis", false, "leave Redis Streams out even when redis-server is installed")
	)
	flag.Parse()
	if *natsServe {
		cl := natsCluster{name: *natsName, listen: *natsClus}
		if *natsRts != "" {
			cl.routes = strings.Split(*natsRts, ",")
		}
		if err := serveNATS(*natsAddr, *natsDir, *natsSync, cl); err != nil {
			fmt.Fprintln(os.Stderr, "nats-serve:", err)
			os.Exit(1)
		}
		return
	}
	natsWindow, natsFetch = *natsWin, *natsBatch
	o := options{reps: 3, dur: 1500 * time.Millisecond, warm: 500 * time.Millisecond, mode: "short"}
	if *full && !*short {
		o = options{reps: 5, dur: 10 * time.Second, warm: 2 * time.Second, mode: "full"}
	}
	if *reps > 0 {
		o.reps = *reps
	}
	if *dur > 0 {
		o.dur = *dur
	}
	o.e2eRate = *e2eRate
	o.noRedis = *noRedis
	if *only != "" {
		o.only = map[string]bool{}
		for _, w := range strings.Split(*only, ",") {
			o.only[strings.TrimSpace(w)] = true
		}
	}
	if *svgOut == "" && *out != "" {
		*svgOut = filepath.Join(filepath.Dir(*out), "benchmarks.svg")
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	rep, err := runSuite(ctx, o, *wispBin, *dir, *keep)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wispbench:", err)
		os.Exit(1)
	}
	section := rep.markdown(*svgOut, *out)
	if *out == "" {
		fmt.Print(section)
		return
	}
	if err := writeSection(*out, section); err != nil {
		fmt.Fprintln(os.Stderr, "wispbench:", err)
		os.Exit(1)
	}
	if *svgOut != "" {
		if err := os.WriteFile(*svgOut, []byte(rep.svg()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "wispbench:", err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "wrote %s and %s\n", *out, *svgOut)
	fmt.Print(section)
}

// logf reports progress on stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
