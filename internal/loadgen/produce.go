package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wispbus/wisp/client"
)

// Produce produces cfg.Count records (or for cfg.Duration) of
// cfg.RecordSize bytes to cfg.Topic from cfg.Producers clients, at
// cfg.Rate or as fast as they are taken, and waits for every
// acknowledgement. Latency is from each Produce call to its
// acknowledgement. A record that fails is counted in Errors; the run goes
// on.
func Produce(ctx context.Context, cfg Config) (Result, error) {
	cfg.setDefaults()
	if cfg.Topic == "" {
		return Result{}, ErrNoTopic
	}
	admin, err := connect(ctx, &cfg)
	if err != nil {
		return Result{}, err
	}
	defer admin.Close()
	if _, err := ensureTopic(ctx, admin, &cfg, cfg.Topic); err != nil {
		return Result{}, err
	}
	prods, err := openProducers(ctx, &cfg)
	if err != nil {
		return Result{}, err
	}
	defer closeAll(prods)

	var done, start atomic.Int64
	stop := startProgress(&cfg, cfg.Count, &done, &start)
	t0 := time.Now()
	start.Store(t0.UnixNano())
	runProducers(ctx, &cfg, prods, &done, nil)
	el := time.Since(t0)
	stop()

	res := Result{Mode: "produce", Topic: cfg.Topic, RecordSize: cfg.RecordSize, Elapsed: el}
	h := newHist()
	for _, p := range prods {
		res.add(p)
		h.Merge(p.hist)
	}
	res.Latency = summarize(h)
	return res, ctx.Err()
}

// producer is one producing client and what it measured. The promise runs
// on the client's callback goroutine for acknowledged records, so hist has
// one writer; failures may also be reported on the producing goroutine,
// hence the atomics and mu. Everything is read after wg.Wait.
type producer struct {
	id   int
	c    *client.Client
	hist *hdrhistogram.Histogram
	wg   sync.WaitGroup // one per record in flight

	acked, bytes, failed atomic.Int64
	mu                   sync.Mutex // guards firstErr
	firstErr             error
	elapsed              time.Duration
}

func openProducers(ctx context.Context, cfg *Config) ([]*producer, error) {
	var out []*producer
	for i := range cfg.Producers {
		c, err := connect(ctx, cfg, cfg.ProducerOpts...)
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("producer %d: %w", i+1, err)
		}
		out = append(out, &producer{id: i + 1, c: c, hist: newHist()})
	}
	return out, nil
}

func closeAll(ps []*producer) {
	for _, p := range ps {
		p.c.Close()
	}
}

// runProducers runs every producer to the end of its share and waits for
// their acknowledgements. stamp, when set, marks each record just before
// it is produced (E2E and Fn write the send time into it), on the
// producer's goroutine; it must not modify the shared value in place.
func runProducers(ctx context.Context, cfg *Config, prods []*producer, done *atomic.Int64, stamp func(*client.Record)) {
	var wg sync.WaitGroup
	for i, p := range prods {
		n := int64(-1) // unlimited: until the deadline
		if cfg.Count > 0 {
			n = split(cfg.Count, len(prods), i)
		}
		wg.Go(func() { p.run(ctx, cfg, n, done, stamp) })
	}
	wg.Wait()
}

func (p *producer) run(ctx context.Context, cfg *Config, n int64, done *atomic.Int64, stamp func(*client.Record)) {
	val := cfg.Value
	if val == nil {
		val = payload(cfg.RecordSize)
	}
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = time.Now().Add(cfg.Duration)
	}
	if n < 0 && deadline.IsZero() {
		n = 0 // neither a count nor a duration: nothing to do
	}
	pace := newPacer(cfg.Rate / float64(cfg.Producers))
	start := time.Now()
	for sent := int64(0); n < 0 || sent < n; sent++ {
		if !deadline.IsZero() {
			if pace.interval > 0 && !pace.due().Before(deadline) {
				break // the next record is due after the end
			}
			if pace.interval == 0 && sent&63 == 0 && time.Now().After(deadline) {
				break
			}
		}
		if sent&63 == 0 && ctx.Err() != nil {
			break // interrupted: what is buffered is still delivered
		}
		if pace.wait(ctx) != nil {
			break
		}
		rec := &client.Record{Topic: cfg.Topic, Value: val}
		if stamp != nil {
			stamp(rec)
		}
		t0 := time.Now()
		p.wg.Add(1)
		p.c.Produce(ctx, rec, func(r *client.Record, err error) {
			defer p.wg.Done()
			if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return // not sent: the run was interrupted
			}
			if err != nil {
				p.failed.Add(1)
				p.mu.Lock()
				if p.firstErr == nil {
					p.firstErr = err
				}
				p.mu.Unlock()
				return
			}
			record(p.hist, time.Since(t0))
			p.acked.Add(1)
			p.bytes.Add(int64(len(r.Value)))
			done.Add(1)
		})
	}
	// Flush fails only when ctx ends; the promises then report each
	// record's fate, and wg.Wait waits for them all.
	_ = p.c.Flush(ctx)
	p.wg.Wait()
	p.elapsed = time.Since(start)
}

// add counts p into r.
func (r *Result) add(p *producer) {
	r.Records += p.acked.Load()
	r.Bytes += p.bytes.Load()
	r.Errors += p.failed.Load()
	if r.FirstError == nil {
		r.FirstError = p.firstErr
	}
	r.Clients = append(r.Clients, ClientResult{Role: "producer", ID: p.id, Records: p.acked.Load(),
		Bytes: p.bytes.Load(), Elapsed: p.elapsed, Latency: summarize(p.hist)})
}
