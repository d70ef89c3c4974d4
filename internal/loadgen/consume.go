package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wispbus/wisp/client"
)

// Consume reads cfg.Topic with cfg.Consumers clients, from the start of
// each partition (or its end, with FromEnd), until cfg.Count records have
// arrived or cfg.Duration has passed; with neither, it reads the records
// the topic holds when it starts. Without a Group the partitions are
// split among the consumers (every k-th to consumer k), which commit
// nothing; with one, they join it and the group assigns them. Creating the
// consumers is inside the measured time.
func Consume(ctx context.Context, cfg Config) (Result, error) {
	cfg.setDefaults()
	if cfg.Topic == "" {
		return Result{}, ErrNoTopic
	}
	admin, err := connect(ctx, &cfg)
	if err != nil {
		return Result{}, err
	}
	defer admin.Close()
	ti, err := admin.DescribeTopic(ctx, cfg.Topic)
	if err != nil {
		return Result{}, err
	}
	if cfg.Group == "" && cfg.Consumers > len(ti.Partitions) {
		return Result{}, fmt.Errorf("loadgen: %d consumers for %d partitions without a group: some would have nothing to read", cfg.Consumers, len(ti.Partitions))
	}
	target := cfg.Count
	if target == 0 && cfg.Duration == 0 && !cfg.FromEnd {
		for _, p := range ti.Partitions {
			target += p.HighWatermark - p.LogStartOffset
		}
	}
	res := Result{Mode: "consume", Topic: cfg.Topic, RecordSize: cfg.RecordSize}
	if target == 0 && cfg.Duration == 0 {
		return res, nil // nothing to read
	}
	from := client.AtStart()
	if cfg.FromEnd {
		from = client.AtEnd()
	}
	clients := make([]*client.Client, 0, cfg.Consumers)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for i := range cfg.Consumers {
		c, err := connect(ctx, &cfg)
		if err != nil {
			return Result{}, fmt.Errorf("consumer %d: %w", i+1, err)
		}
		clients = append(clients, c)
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		var dcancel context.CancelFunc
		rctx, dcancel = context.WithTimeout(rctx, cfg.Duration)
		defer dcancel()
	}
	var done, started atomic.Int64
	stop := startProgress(&cfg, target, &done, &started)
	t0 := time.Now()
	started.Store(t0.UnixNano())
	cons := make([]*consumer, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		k := &consumer{id: i + 1, target: target, done: &done, stopAll: cancel, last: t0}
		cons[i] = k
		opts := []client.ConsumerOpt{client.StartOffset(from)}
		if cfg.Group != "" {
			opts = append(opts, client.Topics(cfg.Topic), client.Group(cfg.Group))
		} else {
			opts = append(opts, client.Partitions(cfg.Topic, partitionShare(ti.Partitions, len(clients), i)...))
		}
		wg.Go(func() {
			cons, err := c.NewConsumer(rctx, opts...)
			if err != nil {
				if rctx.Err() == nil {
					k.err = err
				}
				return
			}
			k.poll(rctx, cons, nil)
		})
	}
	wg.Wait()
	stop()

	for _, k := range cons {
		res.Records += k.records
		res.Bytes += k.bytes
		res.Elapsed = max(res.Elapsed, k.last.Sub(t0))
		if res.FirstError == nil {
			res.FirstError = k.err
		}
		res.Clients = append(res.Clients, ClientResult{Role: "consumer", ID: k.id, Records: k.records,
			Bytes: k.bytes, Elapsed: k.last.Sub(t0)})
	}
	if res.FirstError != nil && res.Records == 0 {
		return res, res.FirstError
	}
	return res, ctx.Err()
}

// consumer is one consuming client's loop and what it counted.
type consumer struct {
	id      int
	target  int64         // records to count over all consumers; 0 is no bound
	done    *atomic.Int64 // records counted over all consumers
	stopAll context.CancelFunc

	records, bytes int64
	last           time.Time // when the last counted record arrived
	err            error     // the first error that stopped or hindered it
}

// poll polls until ctx ends or the target is reached (it then stops every
// consumer), and closes cons. each, when set, sees every record and says
// whether it counts.
func (k *consumer) poll(ctx context.Context, cons *client.Consumer, each func(*client.Record) bool) {
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = cons.Close(cctx)
	}()
	for ctx.Err() == nil {
		recs, err := cons.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, client.ErrClosed) {
				return
			}
			if k.err == nil {
				k.err = err
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		n, nb := int64(0), int64(0)
		for _, r := range recs {
			if each != nil && !each(r) {
				continue
			}
			n++
			nb += int64(len(r.Value))
		}
		if n == 0 {
			continue
		}
		total := k.done.Add(n)
		if k.target > 0 && total >= k.target {
			// Count only up to the target: the last poll may overshoot.
			if over := total - k.target; over > 0 {
				nb -= nb * min(over, n) / n
				n -= min(over, n)
			}
			k.stopAll()
		}
		k.records += n
		k.bytes += nb
		k.last = time.Now()
	}
}
