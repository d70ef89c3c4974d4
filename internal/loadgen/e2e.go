package loadgen

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wispbus/wisp/client"
)

// E2E measures end-to-end latency: cfg.Producers produce to cfg.Topic at
// cfg.Rate (which it needs) for cfg.Count records or cfg.Duration, while
// cfg.Consumers group-less consumers, started at the end of the topic
// before the first record is sent, read it back. Each value starts with
// the run's id and its send time, taken just before the Produce call; the
// latency is from then to the consumer's receipt. Records of other runs
// are ignored. After the last acknowledgement the consumers get
// cfg.DrainTimeout to receive the rest; what they did not is Lost.
func E2E(ctx context.Context, cfg Config) (Result, error) {
	return e2e(ctx, cfg, "e2e")
}

// Fn is E2E through a function: records are produced at cfg.Rate to the
// function's input and received from one of its outputs (cfg.Function's
// input and first output, unless cfg.Topic and cfg.OutputTopic say
// otherwise). The stamp travels in the header StampHeader, which the
// SDK's Filter, Map and Route keep, so values can be what the function
// expects: cfg.Value, or by default a JSON object {"type":"wisp-bench",
// "pad":"..."} of cfg.RecordSize bytes. Every output record is counted
// except those stamped by another run; only stamped ones have a latency.
// With cfg.Function, the drain waits until the function has no lag and
// the consumers have everything it wrote, so a filter's drops are not
// lost records.
func Fn(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Function == "" && (cfg.Topic == "" || cfg.OutputTopic == "") {
		return Result{}, errors.New("loadgen: no function, or no input and output topics")
	}
	return e2e(ctx, cfg, "fn")
}

// StampHeader is the header Fn stamps records with: the run id and the
// send time, 8 bytes each.
const StampHeader = "wisp-bench"

// stampSize is the run id and the send time at the start of each value.
const stampSize = 16

// jsonPayload is a JSON object of about size bytes for Fn:
// {"type":"wisp-bench","pad":"abc..."}.
func jsonPayload(size int) []byte {
	b := []byte(`{"type":"wisp-bench","pad":"`)
	for i := 0; len(b) < size-2; i++ {
		b = append(b, 'a'+byte(i%26))
	}
	return append(b, `"}`...)
}

func e2e(ctx context.Context, cfg Config, mode string) (Result, error) {
	fn := mode == "fn"
	if fn && cfg.Value == nil {
		size := cfg.RecordSize
		if size <= 0 {
			size = DefaultRecordSize
		}
		cfg.Value = jsonPayload(size)
	}
	cfg.setDefaults()
	switch {
	case cfg.Rate <= 0:
		return Result{}, ErrNoRate
	case !fn && cfg.RecordSize < MinE2ERecordSize:
		return Result{}, ErrSmallValue
	}
	admin, err := connect(ctx, &cfg)
	if err != nil {
		return Result{}, err
	}
	defer admin.Close()
	out := cfg.Topic
	if fn {
		if cfg.Function != "" {
			d, err := admin.DescribeFunction(ctx, cfg.Function)
			if err != nil {
				return Result{}, fmt.Errorf("function %s: %w", cfg.Function, err)
			}
			if cfg.Topic == "" {
				cfg.Topic = d.Input
			}
			if cfg.OutputTopic == "" && len(d.Outputs) > 0 {
				cfg.OutputTopic = d.Outputs[0]
			}
			if cfg.OutputTopic == "" {
				return Result{}, fmt.Errorf("loadgen: function %s has no output topic", cfg.Function)
			}
		}
		out = cfg.OutputTopic
	}
	if cfg.Topic == "" {
		return Result{}, ErrNoTopic
	}
	if _, err := ensureTopic(ctx, admin, &cfg, cfg.Topic); err != nil {
		return Result{}, err
	}
	outParts, err := ensureTopic(ctx, admin, &cfg, out)
	if err != nil {
		return Result{}, err
	}
	if cfg.Consumers > len(outParts) {
		return Result{}, fmt.Errorf("loadgen: %d consumers for %d partitions of %s: some would have nothing to read", cfg.Consumers, len(outParts), out)
	}
	prods, err := openProducers(ctx, &cfg)
	if err != nil {
		return Result{}, err
	}
	defer closeAll(prods)

	// The consumers resolve the end of each partition before NewConsumer
	// returns, so none of the run's records can be missed. outStart is
	// the output's end before them, to count what the function writes.
	outStart, err := endSum(ctx, admin, out)
	if err != nil {
		return Result{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var id [8]byte
	binary.LittleEndian.PutUint64(id[:], uint64(time.Now().UnixNano()))
	base := time.Now()
	var done, started atomic.Int64
	cons := make([]*consumer, cfg.Consumers)
	kcs := make([]*client.Consumer, cfg.Consumers)
	hists := make([]*hdrhistogram.Histogram, cfg.Consumers)
	for i := range cons {
		c, err := connect(ctx, &cfg)
		if err != nil {
			closeConsumers(kcs[:i])
			return Result{}, fmt.Errorf("consumer %d: %w", i+1, err)
		}
		defer c.Close()
		kc, err := c.NewConsumer(ctx, client.StartOffset(client.AtEnd()),
			client.Partitions(out, partitionShare(outParts, cfg.Consumers, i)...))
		if err != nil {
			closeConsumers(kcs[:i])
			return Result{}, fmt.Errorf("consumer %d: %w", i+1, err)
		}
		cons[i] = &consumer{id: i + 1, done: &done, stopAll: cancel}
		kcs[i] = kc
		hists[i] = newHist()
	}

	// stamped returns a record's send time, whether it has one of this
	// run, and whether it has another run's.
	stamped := func(r *client.Record) (time.Duration, bool, bool) {
		s := r.Value
		if fn {
			s = nil
			for _, h := range r.Headers {
				if h.Key == StampHeader {
					s = h.Value
				}
			}
			if s == nil {
				return 0, false, false
			}
		}
		if len(s) < stampSize || !bytes.Equal(s[:8], id[:]) {
			return 0, false, fn && len(s) > 0
		}
		return time.Duration(binary.LittleEndian.Uint64(s[8:16])), true, false
	}
	stop := startProgress(&cfg, cfg.Count, &done, &started)
	t0 := time.Now()
	started.Store(t0.UnixNano())
	var wg sync.WaitGroup
	for i, k := range cons {
		k.last = t0
		h := hists[i]
		wg.Go(func() {
			k.poll(rctx, kcs[i], func(r *client.Record) bool {
				sent, ours, other := stamped(r)
				if ours {
					record(h, time.Since(base)-sent)
				}
				// E2E counts its own records; Fn every output record
				// except other runs' (a split's new records carry no
				// stamp).
				return ours || fn && !other
			})
		})
	}
	var acks atomic.Int64 // progress counts receipts, not these
	runProducers(ctx, &cfg, prods, &acks, func(r *client.Record) {
		var s [stampSize]byte
		copy(s[:], id[:])
		binary.LittleEndian.PutUint64(s[8:], uint64(time.Since(base)))
		if fn {
			r.Headers = []client.Header{{Key: StampHeader, Value: s[:]}}
			return
		}
		v := append([]byte(nil), r.Value...)
		copy(v, s[:])
		r.Value = v
	})

	// Drain: wait for the records still on their way. Through a function,
	// until it has processed its input and the consumers have what it
	// wrote; otherwise until they have what was acknowledged.
	drain := time.Now().Add(cfg.DrainTimeout)
	written := int64(-1)
	for time.Now().Before(drain) && ctx.Err() == nil {
		if fn && cfg.Function != "" {
			if w, ok := fnSettled(ctx, admin, cfg.Function, out, outStart, done.Load()); ok {
				written = w
				break
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if done.Load() >= acks.Load() {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	stop()

	res := Result{Mode: mode, Topic: cfg.Topic, RecordSize: cfg.RecordSize}
	if fn {
		res.Function, res.OutputTopic = cfg.Function, out
	}
	for _, p := range prods {
		res.add(p)
	}
	res.Sent, res.Records, res.Bytes = res.Records, 0, 0
	h := newHist()
	for i, k := range cons {
		res.Records += k.records
		res.Bytes += k.bytes
		res.Elapsed = max(res.Elapsed, k.last.Sub(t0))
		if res.FirstError == nil {
			res.FirstError = k.err
		}
		h.Merge(hists[i])
		res.Clients = append(res.Clients, ClientResult{Role: "consumer", ID: k.id, Records: k.records,
			Bytes: k.bytes, Elapsed: k.last.Sub(t0), Latency: summarize(hists[i])})
	}
	res.Lost = max(0, res.Sent-res.Records)
	if fn && cfg.Function != "" {
		if written < 0 { // the drain timed out: what was written by now
			if end, err := endSum(ctx, admin, out); err == nil {
				written = end - outStart
			}
		}
		res.Written = max(written, 0)
		res.Lost = max(0, res.Written-res.Records)
	}
	res.Latency = summarize(h)
	return res, ctx.Err()
}

// endSum is the sum of the end offsets of topic's partitions.
func endSum(ctx context.Context, c *client.Client, topic string) (int64, error) {
	offs, err := c.ListOffsets(ctx, topic, client.AtEnd())
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, o := range offs {
		if o.Err != nil {
			return 0, o.Err
		}
		sum += o.Offset
	}
	return sum, nil
}

// fnSettled reports whether function has processed all its input and the
// consumers have received everything written to out since outStart, and
// how much that was.
func fnSettled(ctx context.Context, c *client.Client, function, out string, outStart, received int64) (int64, bool) {
	d, err := c.DescribeFunction(ctx, function)
	if err != nil || d.Lag > 0 {
		return 0, false
	}
	end, err := endSum(ctx, c, out)
	if err != nil {
		return 0, false
	}
	return end - outStart, received >= end-outStart
}

func closeConsumers(ks []*client.Consumer) {
	for _, k := range ks {
		_ = k.Close(context.Background())
	}
}
