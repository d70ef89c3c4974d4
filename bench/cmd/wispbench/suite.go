package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/wispbus/wisp/client"
)

// row is one workload run on both systems.
type row struct {
	id    string
	title string
	// wispDur and natsDur name the durability each side ran with.
	wispDur, natsDur string
	sync             bool // one record at a time: latency rows too
	rate             int  // end-to-end: the fixed rate, records/s
	wisp, peer       []run
	err              string
	// Redis Streams, the third system, on the rows where it has an
	// equivalent: redisWork is its workload (nil: not measured).
	redisDur  string
	redis     []run
	redisWork workload
}

// frontend is one of wisp's produce paths, compared with the native client.
type frontend struct {
	title, how string
	runs       []run
	err        string
}

type report struct {
	o                  options
	m                  machine
	rows               []*row
	e2e                []*row
	frontends          []*frontend
	started, finished  time.Time
	loadStart, loadEnd string
	tmpFS              string
	// redisVersion is redis-server's version when it ran; redisSkip says
	// why it did not.
	redisVersion, redisSkip string
	// failovers are the cluster phase's leader kills (wisp, NATS).
	failovers []failover
	// clusterErr is why the cluster phase stopped early.
	clusterErr string
	// functions are the WASM rows: pass-through, then the filter;
	// fnBacklogN their backlog.
	functions  []*fnRow
	fnBacklogN int64
}

func (r *report) row(id string) *row {
	for _, x := range r.rows {
		if x.id == id {
			return x
		}
	}
	return nil
}

const (
	wispOS     = "flush=os"
	wispAlways = "flush=always"
	natsOS     = "sync_interval 2 min (default)"
	natsAlways = "sync_interval: always"
)

type suite struct {
	o   options
	rep *report
	// redis is the Redis of the current phase, nil when it is not
	// installed (or excluded with -no-redis).
	redis              *redisSys
	redisBin, redisVer string
	// tmp is the run's temporary directory.
	tmp string
}

func (s *suite) want(w string) bool { return s.o.only == nil || s.o.only[w] }

// workload is one repetition of d; ctx bounds it (d plus a minute).
type workload func(ctx context.Context, d time.Duration) (run, error)

// call runs f with a deadline, so a server that stops answering fails the
// repetition instead of hanging the suite.
func call(ctx context.Context, f workload, d time.Duration) (run, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*d+time.Minute)
	defer cancel()
	return f(ctx, d)
}

// side is one system's part in a workload.
type side struct {
	name string
	p    cpuMeter
	f    workload
	runs *[]run
	err  error
}

// measure runs a warm-up, then reps repetitions, on each side (wisp, NATS,
// and Redis when the row has a Redis workload and Redis runs); the order
// rotates with each repetition (wisp first on the first, NATS first on the
// second, ...). A side that fails keeps its error and the others go on.
func (s *suite) measure(ctx context.Context, r *row, ws, ns cpuMeter, wf, nf workload) {
	sides := []*side{{name: "wisp", p: ws, f: wf, runs: &r.wisp}, {name: "NATS", p: ns, f: nf, runs: &r.peer}}
	if r.redisWork != nil && s.redis != nil {
		sides = append(sides, &side{name: "Redis", p: s.redis.server(), f: r.redisWork, runs: &r.redis})
	}
	logf("%s: warm-up", r.title)
	for _, sd := range sides {
		if _, err := call(ctx, sd.f, s.o.warm); err != nil {
			sd.err = fmt.Errorf("%s warm-up: %w", sd.name, err)
		}
	}
	one := func(sd *side) {
		if sd.err != nil {
			return
		}
		c0, s0 := sd.p.cpu(), procCPU(os.Getpid())
		x, err := call(ctx, sd.f, s.o.dur)
		if err != nil {
			sd.err = fmt.Errorf("%s: %w", sd.name, err)
			logf("  %s: %v", sd.name, err)
			return
		}
		x.cpu, x.clientCPU = sd.p.cpu()-c0, procCPU(os.Getpid())-s0
		*sd.runs = append(*sd.runs, x)
		logf("  %-5s %s", sd.name, describe(x))
	}
	for i := range s.o.reps {
		for j := range sides {
			one(sides[(i+j)%len(sides)])
		}
	}
	for _, sd := range sides {
		if sd.err != nil {
			if r.err != "" {
				r.err += "; "
			}
			r.err += sd.err.Error()
		}
	}
}

func describe(x run) string {
	s := fmt.Sprintf("%s rec/s, %.1f MB/s, CPU cores server %.2f client %.2f", human(x.rate()), x.mbps(), x.cores(), x.clientCores())
	if x.hist != nil {
		s += fmt.Sprintf(", p50 %s p99 %s p99.9 %s", micros(x.pct(50)), micros(x.pct(99)), micros(x.pct(99.9)))
	}
	if x.lost > 0 {
		s += fmt.Sprintf(", %d lost", x.lost)
	}
	return s
}

func runSuite(ctx context.Context, o options, wispBin, parent string, keep bool) (*report, error) {
	rep := &report{o: o, started: time.Now(), loadStart: loadavg(), m: machineInfo()}
	s := &suite{o: o, rep: rep}
	tmp, err := os.MkdirTemp(parent, "wispbench-")
	if err != nil {
		return nil, err
	}
	s.tmp = tmp
	if keep {
		logf("data and logs in %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	rep.tmpFS = fsType(tmp)
	if rep.tmpFS == "tmpfs" {
		return nil, fmt.Errorf("%s is on tmpfs, where fsync costs nothing; pass -dir on a disk", tmp)
	}
	if wispBin == "" {
		logf("building wisp")
		if wispBin, err = buildWisp(ctx, mkdir(tmp, "bin")); err != nil {
			return nil, err
		}
	} else if wispBin, err = filepath.Abs(wispBin); err != nil {
		return nil, err
	}
	logf("load average at start: %s", rep.loadStart)

	wn, err := startWisp(ctx, wispBin, mkdir(tmp, "wisp"))
	if err != nil {
		return nil, err
	}
	defer wn.stop()
	w, err := newWispSys(ctx, 1, wn)
	if err != nil {
		return nil, err
	}
	defer w.close()

	s.redisBin, s.redisVer = findRedis()
	switch {
	case s.o.noRedis:
		rep.redisSkip = "excluded with -no-redis"
	case s.redisBin == "":
		rep.redisSkip = "redis-server is not installed (Debian: `apt-get install redis-server`)"
	default:
		rep.redisVersion = s.redisVer
	}
	if rep.redisSkip != "" {
		logf("Redis Streams: skipped, %s", rep.redisSkip)
	}

	// Phase 1: NATS with its default sync_interval; wisp topics flush=os;
	// Redis appendfsync everysec.
	nn, err := startNATS(ctx, mkdir(tmp, "nats-default"), false)
	if err != nil {
		return nil, err
	}
	n, err := newNATSSys(ctx, 1, nn)
	if err != nil {
		nn.stop()
		return nil, err
	}
	stopRedis, err := s.startRedis(ctx, tmp, "everysec")
	if err != nil {
		n.close()
		nn.stop()
		return nil, err
	}
	if err := s.defaultPhase(ctx, w, n); err != nil {
		stopRedis()
		n.close()
		nn.stop()
		return nil, err
	}
	stopRedis()
	n.close()
	if err := nn.stop(); err != nil {
		logf("stopping NATS: %v", err)
	}

	// Phase 2: fsync per write on both sides.
	if s.want("always") {
		nn, err := startNATS(ctx, mkdir(tmp, "nats-always"), true)
		if err != nil {
			return nil, err
		}
		n, err := newNATSSys(ctx, 1, nn)
		if err != nil {
			nn.stop()
			return nil, err
		}
		stopRedis, err := s.startRedis(ctx, tmp, "always")
		if err != nil {
			n.close()
			nn.stop()
			return nil, err
		}
		err = s.alwaysPhase(ctx, w, n)
		stopRedis()
		n.close()
		nn.stop()
		if err != nil {
			return nil, err
		}
	}
	// Phase 3: three replicas on both sides, then a leader killed.
	if s.want("cluster") {
		if err := s.clusterPhase(ctx, wispBin, tmp); err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			// The rest of the report stands without the cluster rows.
			logf("cluster phase: %v", err)
			s.rep.clusterErr = err.Error()
		}
	}
	rep.finished = time.Now()
	rep.loadEnd = loadavg()
	logf("load average at end: %s", rep.loadEnd)
	return rep, ctx.Err()
}

// startRedis starts the phase's redis-server with the appendfsync policy
// fsync, when Redis is measured; stop stops it.
func (s *suite) startRedis(ctx context.Context, tmp, fsync string) (stop func(), err error) {
	if s.rep.redisVersion == "" {
		return func() {}, nil
	}
	rn, err := startRedis(ctx, s.redisBin, s.redisVer, mkdir(tmp, "redis-"+fsync), fsync)
	if err != nil {
		return nil, err
	}
	s.redis = newRedisSys(rn)
	return func() {
		s.redis.close()
		s.redis = nil
		if err := rn.stop(); err != nil {
			logf("stopping Redis: %v", err)
		}
	}, nil
}

// redisWork is the Redis workload f on dest's stream, or nil when Redis
// does not run.
func (s *suite) redisWork(dest string, f func(ctx context.Context, r *redisSys, key string, d time.Duration) (run, error)) workload {
	if s.redis == nil {
		return nil
	}
	r := s.redis
	return func(ctx context.Context, d time.Duration) (run, error) { return f(ctx, r, r.key(dest), d) }
}

func (s *suite) defaultPhase(ctx context.Context, w *wispSys, n *natsSys) error {
	wprod, err := w.producer(ctx)
	if err != nil {
		return err
	}
	defer wprod.Close()
	npub, err := n.publisher()
	if err != nil {
		return err
	}
	defer npub.close()

	async := func(id, title string, size int) error {
		dest := fmt.Sprintf("os-%d", size)
		r := &row{id: id, title: title, wispDur: wispOS, natsDur: natsOS, redisDur: redisOS,
			redisWork: s.redisWork(dest, func(ctx context.Context, rs *redisSys, key string, d time.Duration) (run, error) {
				return redisProduceAsync(ctx, rs.c, key, size, d)
			})}
		s.rep.rows = append(s.rep.rows, r)
		wt, err := w.topic(ctx, dest, "os")
		if err != nil {
			return err
		}
		_, subj, err := n.stream(ctx, dest)
		if err != nil {
			return err
		}
		s.measure(ctx, r, w.server(), n.server(),
			func(ctx context.Context, d time.Duration) (run, error) {
				return wispProduceAsync(ctx, wprod, wt, size, d)
			},
			func(ctx context.Context, d time.Duration) (run, error) {
				return natsProduceAsync(ctx, npub, subj, size, d)
			})
		return ctx.Err()
	}
	if s.want("async100") || s.want("consume") {
		if err := async("async100", "produce async, 100 B", 100); err != nil {
			return err
		}
	}
	if s.want("async1k") {
		if err := async("async1k", "produce async, 1 KB", 1000); err != nil {
			return err
		}
		s.drop(ctx, w, n, "os-1000")
	}
	if s.want("sync") {
		for _, size := range []int{100, 1000} {
			id, title, dest := "sync", "produce sync, 100 B, one at a time", "os-sync"
			if size != 100 {
				id, title, dest = "sync1k", "produce sync, 1 KB, one at a time", "os-sync-1k"
			}
			r := &row{id: id, title: title, wispDur: wispOS, natsDur: natsOS, sync: true}
			s.rep.rows = append(s.rep.rows, r)
			wt, err := w.topic(ctx, dest, "os")
			if err != nil {
				return err
			}
			_, subj, err := n.stream(ctx, dest)
			if err != nil {
				return err
			}
			s.measure(ctx, r, w.server(), n.server(),
				func(ctx context.Context, d time.Duration) (run, error) {
					return wispProduceSync(ctx, wprod, wt, size, d)
				},
				func(ctx context.Context, d time.Duration) (run, error) {
					return natsProduceSync(ctx, n.js, subj, size, d)
				})
		}
	}
	if s.want("sync") || s.want("ping") {
		// The transport's own round trip, the floor under a sync produce.
		r := &row{id: "ping", title: "round trip, no record (Ping · RTT)", wispDur: "–", natsDur: "–", sync: true}
		s.rep.rows = append(s.rep.rows, r)
		s.measure(ctx, r, w.server(), n.server(),
			func(ctx context.Context, d time.Duration) (run, error) {
				return pingLoop(d, func() error { _, err := wprod.Ping(ctx); return err })
			},
			func(ctx context.Context, d time.Duration) (run, error) {
				return pingLoop(d, func() error { _, err := n.nc.RTT(); return err })
			})
	}
	if s.want("consume") {
		// Reads what "produce async, 100 B" wrote, from the start, with a
		// client (and connection) of its own.
		r := &row{id: "consume", title: "consume 100 B from the start", wispDur: wispOS, natsDur: natsOS, redisDur: redisOS}
		s.rep.rows = append(s.rep.rows, r)
		if s.redis != nil {
			key := s.redis.key("os-100")
			rmax, err := s.redis.records(ctx, key)
			if err != nil {
				return err
			}
			logf("consume: Redis stream holds %d entries", rmax)
			rc := s.redis.c
			r.redisWork = func(ctx context.Context, d time.Duration) (run, error) { return redisConsume(ctx, rc, key, rmax, d) }
		}
		wt, err := w.topic(ctx, "os-100", "os")
		if err != nil {
			return err
		}
		stream, _, err := n.stream(ctx, "os-100")
		if err != nil {
			return err
		}
		wmax, err := w.records(ctx, wt)
		if err != nil {
			return err
		}
		nmax, err := n.records(ctx, stream)
		if err != nil {
			return err
		}
		logf("consume: topic holds %d records, stream %d messages", wmax, nmax)
		wc, err := w.client(ctx)
		if err != nil {
			return err
		}
		ncons, njs, err := natsConnect(n.url)
		if err != nil {
			wc.Close()
			return err
		}
		s.measure(ctx, r, w.server(), n.server(),
			func(ctx context.Context, d time.Duration) (run, error) { return wispConsume(ctx, wc, wt, wmax, d) },
			func(ctx context.Context, d time.Duration) (run, error) { return natsConsume(ctx, njs, stream, nmax, d) })
		wc.Close()
		ncons.Close()
		s.drop(ctx, w, n, "os-100")
	}
	if s.want("e2e") {
		if err := s.e2e(ctx, w, n, npub); err != nil {
			return err
		}
	}
	if s.want("frontends") {
		if err := s.frontends(ctx, w); err != nil {
			return err
		}
	}
	if s.want("functions") {
		if err := s.functions(ctx, w, mkdir(s.tmp, "wasm")); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// e2eLight is the light-load rate of the end-to-end latency workload.
const e2eLight = 5000

// e2e measures produce-to-consume latency on both sides at the same fixed
// rates: a light one (e2eLight), where latency is the path itself; a
// loaded one that both sustain (-e2e-rate, or half wisp's async 100 B
// rate capped at a quarter of NATS's), where it includes queueing; and
// half wisp's async 100 B rate uncapped (the "50% of wisp's max"),
// which NATS may not sustain: its achieved rate and losses then say so.
func (s *suite) e2e(ctx context.Context, w *wispSys, n *natsSys, npub *natsPublisher) error {
	rate, half := s.o.e2eRate, 0
	if a := s.rep.row("async100"); a != nil {
		ws := summarize(a.wisp, run.rate)
		ns := summarize(a.peer, run.rate)
		if ws.valid() {
			half = max(1000, int(ws.med/2)/1000*1000)
		}
		if rate == 0 && ws.valid() && ns.valid() {
			// Half of wisp's rate, capped at a quarter of NATS's:
			// at half its publish-only rate NATS saturates once a
			// consumer shares the two cores (p50 in the hundreds of
			// ms in trial runs), and a saturated system's latency is
			// its queue, not its path.
			rate = int(math.Min(ws.med/2, ns.med/4))
		}
	}
	if rate == 0 {
		rate = 20000
	}
	rate = max(1000, rate/1000*1000)
	rates := []int{e2eLight, rate}
	if half > rate {
		rates = append(rates, half)
	}
	wt, err := w.topic(ctx, "os-e2e", "os")
	if err != nil {
		return err
	}
	stream, subj, err := n.stream(ctx, "os-e2e")
	if err != nil {
		return err
	}
	// Latency settings: the wisp producer sends as soon as its connection
	// is free (linger 0) as PublishAsync does; each side consumes on a
	// connection of its own.
	wp, err := w.producer(ctx, client.Linger(0))
	if err != nil {
		return err
	}
	defer wp.Close()
	wc, err := w.client(ctx)
	if err != nil {
		return err
	}
	defer wc.Close()
	nc, njs, err := natsConnect(n.url)
	if err != nil {
		return err
	}
	defer nc.Close()
	for _, rt := range rates {
		r := &row{id: fmt.Sprintf("e2e-%d", rt), title: fmt.Sprintf("end-to-end at %s rec/s", human(float64(rt))),
			wispDur: wispOS, natsDur: natsOS, rate: rt}
		s.rep.e2e = append(s.rep.e2e, r)
		s.measure(ctx, r, w.server(), n.server(),
			func(ctx context.Context, d time.Duration) (run, error) { return wispE2E(ctx, wp, wc, wt, rt, d) },
			func(ctx context.Context, d time.Duration) (run, error) {
				return natsE2E(ctx, npub, njs, stream, subj, rt, d)
			})
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// frontends measures wisp's Kafka and HTTP produce paths (flush=os, 100 B)
// to compare with the native QUIC client of "produce async, 100 B".
func (s *suite) frontends(ctx context.Context, w *wispSys) error {
	one := func(f *frontend, fn workload) {
		s.rep.frontends = append(s.rep.frontends, f)
		logf("%s: warm-up", f.title)
		if _, err := call(ctx, fn, s.o.warm); err != nil {
			f.err = err.Error()
			logf("  %v", err)
			return
		}
		for range s.o.reps {
			c0, s0 := w.node.cpu(), procCPU(os.Getpid())
			x, err := call(ctx, fn, s.o.dur)
			if err != nil {
				f.err = err.Error()
				logf("  %v", err)
				return
			}
			x.cpu, x.clientCPU = w.node.cpu()-c0, procCPU(os.Getpid())-s0
			f.runs = append(f.runs, x)
			logf("  wisp  %s", describe(x))
		}
	}
	kt, err := w.topic(ctx, "kafka-os-100", "os")
	if err != nil {
		return err
	}
	kc, err := newKafkaClient(w.node.kafka)
	if err != nil {
		return err
	}
	one(&frontend{title: "Kafka listener (franz-go kgo)", how: "async, linger 5 ms, acks=all, idempotent, no compression"},
		func(ctx context.Context, d time.Duration) (run, error) { return kafkaProduceAsync(ctx, kc, kt, 100, d) })
	kc.Close()
	ht, err := w.topic(ctx, "http-os-100", "os")
	if err != nil {
		return err
	}
	one(&frontend{title: "HTTP produce (JSON)", how: fmt.Sprintf("%d records per POST, %d requests in flight, acks=all", httpBatch, httpConns)},
		func(ctx context.Context, d time.Duration) (run, error) {
			return httpProduce(ctx, w.node.http, ht, 100, d)
		})
	return ctx.Err()
}

func (s *suite) alwaysPhase(ctx context.Context, w *wispSys, n *natsSys) error {
	wprod, err := w.producer(ctx)
	if err != nil {
		return err
	}
	defer wprod.Close()
	npub, err := n.publisher()
	if err != nil {
		return err
	}
	defer npub.close()
	wt, err := w.topic(ctx, "always-100", "always")
	if err != nil {
		return err
	}
	_, subj, err := n.stream(ctx, "always-100")
	if err != nil {
		return err
	}
	r := &row{id: "always-async", title: "produce async, 100 B, fsync per write", wispDur: wispAlways + " (group commit)", natsDur: natsAlways,
		redisDur: redisAlways, redisWork: s.redisWork("always-100", func(ctx context.Context, rs *redisSys, key string, d time.Duration) (run, error) {
			return redisProduceAsync(ctx, rs.c, key, 100, d)
		})}
	s.rep.rows = append(s.rep.rows, r)
	s.measure(ctx, r, w.server(), n.server(),
		func(ctx context.Context, d time.Duration) (run, error) {
			return wispProduceAsync(ctx, wprod, wt, 100, d)
		},
		func(ctx context.Context, d time.Duration) (run, error) {
			return natsProduceAsync(ctx, npub, subj, 100, d)
		})
	wts, err := w.topic(ctx, "always-sync", "always")
	if err != nil {
		return err
	}
	_, subjs, err := n.stream(ctx, "always-sync")
	if err != nil {
		return err
	}
	r = &row{id: "always-sync", title: "produce sync, 100 B, fsync per write", wispDur: wispAlways, natsDur: natsAlways, sync: true}
	s.rep.rows = append(s.rep.rows, r)
	s.measure(ctx, r, w.server(), n.server(),
		func(ctx context.Context, d time.Duration) (run, error) {
			return wispProduceSync(ctx, wprod, wts, 100, d)
		},
		func(ctx context.Context, d time.Duration) (run, error) {
			return natsProduceSync(ctx, n.js, subjs, 100, d)
		})
	return ctx.Err()
}

// drop deletes a destination's topic and stream once no workload reads
// it any more, so that the full suite's disk use stays a few GB.
func (s *suite) drop(ctx context.Context, w *wispSys, n *natsSys, dest string) {
	if s.redis != nil {
		s.redis.drop(ctx, dest)
	}
	if err := w.admin.DeleteTopic(ctx, "bench-"+dest); err != nil {
		logf("delete wisp topic %s: %v", dest, err)
	}
	if err := n.js.DeleteStream(ctx, n.streamName(dest)); err != nil {
		logf("delete NATS stream %s: %v", dest, err)
	}
}

// pingLoop calls ping back to back for d, recording each call's latency.
func pingLoop(d time.Duration, ping func() error) (run, error) {
	h := newHist()
	start := time.Now()
	var n int64
	for time.Since(start) < d {
		t0 := time.Now()
		if err := ping(); err != nil {
			return run{}, err
		}
		_ = h.RecordValue(int64(time.Since(t0)))
		n++
	}
	return run{records: n, elapsed: time.Since(start), hist: h}, nil
}

func mkdir(parent, name string) string {
	d := filepath.Join(parent, name)
	_ = os.MkdirAll(d, 0o755)
	return d
}

func fsType(path string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return "unknown"
	}
	switch st.Type {
	case 0x01021994:
		return "tmpfs"
	case 0xEF53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x794c7630:
		return "overlayfs"
	}
	return fmt.Sprintf("0x%x", st.Type)
}
