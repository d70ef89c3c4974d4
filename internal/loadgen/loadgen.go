// Package loadgen generates load against a running wisp node or cluster
// through the public client package, and measures it: throughput of
// producers and consumers, produce acknowledgement latency, and the
// end-to-end latency from a producer's call to a consumer's receipt, in HDR
// histograms. It is the engine of `wisp bench`.
//
//	res, err := loadgen.Produce(ctx, loadgen.Config{
//		Topic: "bench", RecordSize: 100, Count: 1_000_000,
//		ClientOpts: []client.Opt{client.Servers("127.0.0.1:7070")},
//	})
//	fmt.Printf("%.0f records/s, p99 %v\n", res.RecordsPerSec(), res.Latency.P99)
//
// Every client (one per producer, one per consumer) opens a connection of
// its own, as separate processes would.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wispbus/wisp/client"
)

// Defaults of Config.
const (
	DefaultRecordSize       = 100
	DefaultProgressInterval = time.Second
	DefaultDrainTimeout     = 10 * time.Second
	// MinE2ERecordSize is the smallest value E2E can stamp: a run id and a
	// send time, 8 bytes each.
	MinE2ERecordSize = 16
)

// Errors of Config validation.
var (
	ErrNoTopic    = errors.New("loadgen: no topic")
	ErrNoRate     = errors.New("loadgen: end-to-end latency needs a fixed rate")
	ErrSmallValue = fmt.Errorf("loadgen: end-to-end records need at least %d bytes", MinE2ERecordSize)
)

// Config describes one load run. The zero value of each field is its
// default.
type Config struct {
	// Topic is produced to (and consumed from, except in Fn runs). Produce,
	// E2E and Fn create it with Partitions when it does not exist.
	Topic string
	// Partitions of a topic the run creates, overriding the default of 1.
	Partitions int32
	// Replicas is the replication factor of a topic the run creates,
	// overriding the default of the cluster's default.
	Replicas int16
	// TopicConfigs are the config overrides of a topic the run creates,
	// e.g. {"flush": "os"}.
	TopicConfigs map[string]string
	// RecordSize is the value size in bytes, overriding the default of 100.
	RecordSize int
	// Value, when set, is the value of every record instead of RecordSize
	// printable bytes (E2E still writes its stamp over the first 16).
	Value []byte
	// Count is how many records to produce (split over the producers) or,
	// for Consume, to read. Zero with no Duration: produce 0 records;
	// Consume reads what the topic holds when it starts.
	Count int64
	// Duration bounds the run when Count is zero, or caps it.
	Duration time.Duration
	// Producers and Consumers are how many clients produce and consume,
	// each on its own connection; overriding the default of 1.
	Producers, Consumers int
	// Rate is the total records per second of the producers, shared
	// equally; zero is as fast as the client takes them (not allowed for
	// E2E and Fn, whose latency means something only below saturation).
	Rate float64
	// Group makes Consume join this consumer group (and commit) instead of
	// splitting the partitions among group-less consumers.
	Group string
	// FromEnd makes Consume start at the end of each partition instead of
	// its start.
	FromEnd bool
	// Function is the function Fn measures: its input is Topic and its
	// first output OutputTopic unless those are set.
	Function string
	// OutputTopic is where Fn reads what the function wrote.
	OutputTopic string
	// ClientOpts are given to every client (servers, TLS, timeouts);
	// ProducerOpts on top of them to producing clients (linger, batch
	// size, acks, compression).
	ClientOpts, ProducerOpts []client.Opt
	// DrainTimeout is how long E2E and Fn wait, after the last record was
	// produced, for the rest to arrive, overriding the default of 10s.
	DrainTimeout time.Duration
	// Progress, when set, is called from a goroutine of the run every
	// ProgressInterval (default 1s), and once at the end.
	Progress         func(Progress)
	ProgressInterval time.Duration
}

// Progress is a run's state for a progress display.
type Progress struct {
	// Done is records acknowledged (Produce) or received (the others).
	Done int64
	// Total is the records the run aims at, 0 when it runs for Duration.
	Total   int64
	Elapsed time.Duration
	// Final is set on the last call.
	Final bool
}

func (c *Config) setDefaults() {
	if c.RecordSize <= 0 {
		c.RecordSize = DefaultRecordSize
	}
	if c.Value != nil {
		c.RecordSize = len(c.Value)
	}
	if c.Partitions <= 0 {
		c.Partitions = 1
	}
	if c.Producers <= 0 {
		c.Producers = 1
	}
	if c.Consumers <= 0 {
		c.Consumers = 1
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
}

// Result is what a run measured.
type Result struct {
	Mode  string // "produce", "consume", "e2e" or "fn"
	Topic string
	// Function and OutputTopic: Fn, the function and the topic read.
	Function, OutputTopic string
	RecordSize            int
	// Records acknowledged (Produce) or received (the others), and their
	// value bytes.
	Records, Bytes int64
	// Sent and Lost: E2E and Fn, records produced (acknowledged) and
	// records not received within the DrainTimeout. For Fn, Lost counts
	// the records the function wrote to OutputTopic during the run that
	// did not arrive (a filter's drops are not lost), and Written those it
	// wrote.
	Sent, Lost, Written int64
	// Errors counts records that failed to produce; FirstError is the
	// first such error.
	Errors     int64
	FirstError error
	// Elapsed is the wall time from the first record sent (or the first
	// consumer created) to the last acknowledged (or received).
	Elapsed time.Duration
	// Latency: Produce, from the Produce call to its acknowledgement; E2E
	// and Fn, from just before the Produce call to the consumer's receipt.
	// Nil for Consume.
	Latency *Latency
	// Clients has one entry per producer and consumer.
	Clients []ClientResult
}

// ClientResult is one producer's or consumer's share of a run.
type ClientResult struct {
	Role           string // "producer" or "consumer"
	ID             int    // from 1
	Records, Bytes int64
	Elapsed        time.Duration
	Latency        *Latency
}

// RecordsPerSec is the run's throughput in records.
func (r Result) RecordsPerSec() float64 { return perSec(float64(r.Records), r.Elapsed) }

// MBPerSec is the run's throughput in value bytes (10^6 per MB).
func (r Result) MBPerSec() float64 { return perSec(float64(r.Bytes)/1e6, r.Elapsed) }

// RecordsPerSec is the client's throughput in records.
func (c ClientResult) RecordsPerSec() float64 { return perSec(float64(c.Records), c.Elapsed) }

// MBPerSec is the client's throughput in value bytes (10^6 per MB).
func (c ClientResult) MBPerSec() float64 { return perSec(float64(c.Bytes)/1e6, c.Elapsed) }

func perSec(x float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return x / d.Seconds()
}

// Latency summarizes a latency histogram.
type Latency struct {
	Count                               int64
	Min, Mean, P50, P90, P99, P999, Max time.Duration
}

// histMax is the largest latency a histogram holds; longer ones are
// recorded as histMax.
const histMax = int64(5 * time.Minute)

// newHist is a latency histogram in nanoseconds, 1 ns to histMax, three
// significant digits (HdrHistogram's usual precision: 0.1% error).
func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, histMax, 3) }

func record(h *hdrhistogram.Histogram, d time.Duration) {
	v := min(max(int64(d), 1), histMax)
	_ = h.RecordValue(v) // in range by construction
}

// summarize returns nil for an empty histogram.
func summarize(h *hdrhistogram.Histogram) *Latency {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	q := func(p float64) time.Duration { return time.Duration(h.ValueAtQuantile(p)) }
	return &Latency{Count: h.TotalCount(), Min: time.Duration(h.Min()), Mean: time.Duration(h.Mean()),
		P50: q(50), P90: q(90), P99: q(99), P999: q(99.9), Max: time.Duration(h.Max())}
}

// split shares n out among k: the first n%k get one more.
func split(n int64, k, i int) int64 {
	q := n / int64(k)
	if int64(i) < n%int64(k) {
		q++
	}
	return q
}

// payload is a value of size printable bytes.
func payload(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// pacer spaces sends to a fixed rate. It catches up after a stall (sends
// what is due at once) rather than lowering the rate: a fixed-rate run is
// an open system, as real producers are.
type pacer struct {
	start    time.Time
	interval float64 // nanoseconds between records; 0 is unpaced
	sent     int64
}

func newPacer(rate float64) *pacer {
	p := &pacer{start: time.Now()}
	if rate > 0 {
		p.interval = float64(time.Second) / rate
	}
	return p
}

// due is when the next record is due.
func (p *pacer) due() time.Time {
	return p.start.Add(time.Duration(float64(p.sent) * p.interval))
}

// wait blocks until the next record is due or ctx ends.
func (p *pacer) wait(ctx context.Context) error {
	if p.interval == 0 {
		return nil
	}
	due := p.due()
	p.sent++
	d := time.Until(due)
	if d <= 0 {
		return ctx.Err()
	}
	// Sleeping below ~100µs costs more than it saves; send a little early.
	if d < 100*time.Microsecond {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// progress calls cfg.Progress every interval with done's value until
// stop is called, then once more with Final set. stop returns when the
// goroutine is gone.
func startProgress(cfg *Config, total int64, done *atomic.Int64, start *atomic.Int64) (stop func()) {
	if cfg.Progress == nil {
		return func() {}
	}
	elapsed := func() time.Duration {
		s := start.Load()
		if s == 0 {
			return 0
		}
		return time.Duration(time.Now().UnixNano() - s)
	}
	quit := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				cfg.Progress(Progress{Done: done.Load(), Total: total, Elapsed: elapsed()})
			case <-quit:
				cfg.Progress(Progress{Done: done.Load(), Total: total, Elapsed: elapsed(), Final: true})
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-exited
	}
}

// connect opens one client with the run's options and extra ones.
func connect(ctx context.Context, cfg *Config, extra ...client.Opt) (*client.Client, error) {
	opts := append(append([]client.Opt(nil), cfg.ClientOpts...), extra...)
	return client.New(ctx, opts...)
}

// ensureTopic creates topic with cfg.Partitions and cfg.TopicConfigs
// unless it exists, and returns its partitions.
func ensureTopic(ctx context.Context, c *client.Client, cfg *Config, topic string) ([]client.PartitionInfo, error) {
	ti, err := c.DescribeTopic(ctx, topic)
	if err == nil {
		return ti.Partitions, nil
	}
	ti, cerr := c.CreateTopic(ctx, client.TopicSpec{Name: topic, Partitions: cfg.Partitions,
		ReplicationFactor: cfg.Replicas, Configs: cfg.TopicConfigs})
	if cerr != nil {
		// Created meanwhile by someone else: describe again.
		if ti, err = c.DescribeTopic(ctx, topic); err == nil {
			return ti.Partitions, nil
		}
		return nil, fmt.Errorf("create topic %s: %w", topic, cerr)
	}
	return ti.Partitions, nil
}

// partitionShare is the partitions of consumer i of k: every k-th one.
func partitionShare(parts []client.PartitionInfo, k, i int) []int32 {
	var out []int32
	for j, p := range parts {
		if j%k == i {
			out = append(out, p.Partition)
		}
	}
	return out
}
