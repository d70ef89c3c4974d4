package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wispbus/wisp/client"
)

// wispSys drives a wisp node through its Go client over QUIC (and, for
// the frontend comparison, through its Kafka and HTTP listeners). The
// durability of each destination is its topic's flush config.
type wispSys struct {
	node  *wispNode   // the first node: Kafka and HTTP listeners
	nodes []*wispNode // every node of a cluster (one for a single node)
	// servers are the QUIC addresses of every node, for the clients.
	servers []string
	admin   *client.Client
	// rf is the replication factor of the topics it creates.
	rf int16
}

// newWispSys connects to the nodes (one, or the members of a cluster);
// topics it creates have rf replicas.
func newWispSys(ctx context.Context, rf int16, nodes ...*wispNode) (*wispSys, error) {
	w := &wispSys{node: nodes[0], nodes: nodes, rf: rf}
	for _, n := range nodes {
		w.servers = append(w.servers, n.quic)
	}
	c, err := client.New(ctx, client.Servers(w.servers...))
	if err != nil {
		return nil, fmt.Errorf("wisp admin client: %w", err)
	}
	w.admin = c
	return w, nil
}

func (w *wispSys) close() { w.admin.Close() }

// server is the CPU meter of every node.
func (w *wispSys) server() cpuMeter {
	var g procGroup
	for _, n := range w.nodes {
		g = append(g, n.proc)
	}
	return g
}

// client is a new client of the nodes with opts.
func (w *wispSys) client(ctx context.Context, opts ...client.Opt) (*client.Client, error) {
	return client.New(ctx, append([]client.Opt{client.Servers(w.servers...)}, opts...)...)
}

// topic creates (once) the single-partition topic of dest with the flush
// policy flush and returns its name.
func (w *wispSys) topic(ctx context.Context, dest, flush string) (string, error) {
	name := "bench-" + dest
	_, err := w.admin.CreateTopic(ctx, client.TopicSpec{Name: name, Partitions: 1, ReplicationFactor: w.rf,
		Configs: map[string]string{"flush": flush}})
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return "", fmt.Errorf("create topic %s: %w", name, err)
	}
	if w.rf > 1 {
		// Measure from a full ISR: until then acks=all waits for fewer.
		deadline := time.Now().Add(30 * time.Second)
		for {
			ti, err := w.admin.DescribeTopic(ctx, name)
			if err == nil && len(ti.Partitions) == 1 && ti.Partitions[0].Leader > 0 && len(ti.Partitions[0].ISR) == int(w.rf) {
				break
			}
			if time.Now().After(deadline) {
				return "", fmt.Errorf("topic %s: no leader with %d in-sync replicas after 30s (%v)", name, w.rf, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return name, nil
}

// records is how many records the topic holds now.
func (w *wispSys) records(ctx context.Context, topic string) (int64, error) {
	ti, err := w.admin.DescribeTopic(ctx, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, p := range ti.Partitions {
		n += p.HighWatermark - p.LogStartOffset
	}
	return n, nil
}

// producerBuffer bounds what a producer holds unacknowledged (the
// client's default is 256 MiB): 64 MiB keeps the pipeline full (16 MiB
// measured some 8% slower on 100 B records) while what is left buffered
// when a repetition's time is up, and counted in its rate, takes about a
// second to deliver rather than several (1 KB records, replication).
// NATS's counterpart is its PublishAsync window.
const producerBuffer = 64 << 20

// producer is a wisp client configured for throughput: the client's
// defaults (linger 5 ms, 1 MiB batches, 5 in flight, acks=all, idempotent)
// but a producerBuffer, then opts.
func (w *wispSys) producer(ctx context.Context, opts ...client.Opt) (*client.Client, error) {
	return w.client(ctx, append([]client.Opt{client.MaxBufferedBytes(producerBuffer)}, opts...)...)
}

// produceAsync produces size-byte records as fast as Produce accepts them
// for d, then flushes; the rate counts acknowledged records over the whole
// time including the flush.
func wispProduceAsync(ctx context.Context, c *client.Client, topic string, size int, d time.Duration) (run, error) {
	val := payload(size)
	var acked, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	promise := func(_ *client.Record, err error) {
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
			return
		}
		acked.Add(1)
	}
	start := time.Now()
	deadline := start.Add(d)
	for n := 0; ; n++ {
		if n&255 == 0 && time.Now().After(deadline) {
			break
		}
		c.Produce(ctx, &client.Record{Topic: topic, Value: val}, promise)
	}
	if err := c.Flush(ctx); err != nil {
		return run{}, fmt.Errorf("flush: %w", err)
	}
	el := time.Since(start)
	if p := firstErr.Load(); p != nil {
		return run{}, fmt.Errorf("%d records failed: %w", failed.Load(), *p)
	}
	return run{records: acked.Load(), bytes: acked.Load() * int64(size), elapsed: el}, nil
}

// wispProduceSync produces one record at a time with ProduceSync for d,
// recording each call's latency.
func wispProduceSync(ctx context.Context, c *client.Client, topic string, size int, d time.Duration) (run, error) {
	val := payload(size)
	h := newHist()
	start := time.Now()
	deadline := start.Add(d)
	var n int64
	for time.Now().Before(deadline) {
		t0 := time.Now()
		if err := c.ProduceSync(ctx, &client.Record{Topic: topic, Value: val}); err != nil {
			return run{}, err
		}
		_ = h.RecordValue(int64(time.Since(t0)))
		n++
	}
	el := time.Since(start)
	return run{records: n, bytes: n * int64(size), elapsed: el, hist: h}, nil
}

// wispConsume reads topic from its start with a consumer without a group
// (nothing committed, like an AckNone pull consumer) until it has max
// records or d has passed. Creating the consumer is inside the time.
func wispConsume(ctx context.Context, c *client.Client, topic string, max int64, d time.Duration) (run, error) {
	start := time.Now()
	k, err := c.NewConsumer(ctx, client.Topics(topic), client.StartOffset(client.AtStart()))
	if err != nil {
		return run{}, err
	}
	cctx, cancel := context.WithDeadline(ctx, start.Add(d))
	defer cancel()
	var got, nb int64
	for got < max {
		recs, err := k.Poll(cctx)
		if err != nil {
			if cctx.Err() != nil {
				break
			}
			k.Close(ctx)
			return run{}, err
		}
		got += int64(len(recs))
		for _, r := range recs {
			nb += int64(len(r.Value))
		}
	}
	el := time.Since(start)
	k.Close(ctx)
	return run{records: got, bytes: nb, elapsed: el}, nil
}

// wispE2E produces at a fixed rate on prod and measures, on a consumer of
// a second client, the time from just before Produce to the record's
// arrival.
func wispE2E(ctx context.Context, prod, cons *client.Client, topic string, rate int, d time.Duration) (run, error) {
	k, err := cons.NewConsumer(ctx, client.Topics(topic), client.StartOffset(client.AtEnd()))
	if err != nil {
		return run{}, err
	}
	defer k.Close(ctx)
	var failed atomic.Int64
	promise := func(_ *client.Record, err error) {
		if err != nil {
			failed.Add(1)
		}
	}
	send := func(v []byte) error {
		prod.Produce(ctx, &client.Record{Topic: topic, Value: v}, promise)
		return nil
	}
	recv := func(rctx context.Context, each func([]byte)) error {
		for {
			recs, err := k.Poll(rctx)
			if err != nil {
				if rctx.Err() != nil {
					return nil
				}
				return err
			}
			for _, r := range recs {
				each(r.Value)
			}
		}
	}
	r, err := e2eRun(ctx, send, recv, rate, d)
	if n := failed.Load(); n > 0 && err == nil {
		err = fmt.Errorf("%d produces failed", n)
	}
	return r, err
}

// e2eRun is the fixed-rate loop shared by every system. Each value holds
// a run id and the send time (nanoseconds since base); the receiver
// ignores records of other runs (e.g. warm-up leftovers).
func e2eRun(ctx context.Context, send func([]byte) error, recv func(context.Context, func([]byte)) error, rate int, d time.Duration) (run, error) {
	var id [8]byte
	binary.LittleEndian.PutUint64(id[:], uint64(time.Now().UnixNano()))
	base := time.Now()
	h := newHist()
	planned := int64(float64(rate) * d.Seconds())
	// target is what the receiver waits for: the planned count, or what
	// was sent when the sender could not keep up.
	var target atomic.Int64
	target.Store(planned)
	var got atomic.Int64
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	recvDone := make(chan error, 1)
	allIn := make(chan struct{})
	var allOnce sync.Once
	allDone := func() { allOnce.Do(func() { close(allIn) }) }
	go func() {
		recvDone <- recv(rctx, func(v []byte) {
			if len(v) < 16 || !bytes.Equal(v[:8], id[:]) {
				return
			}
			lat := time.Since(base) - time.Duration(binary.LittleEndian.Uint64(v[8:16]))
			_ = h.RecordValue(int64(lat))
			if got.Add(1) == target.Load() {
				allDone()
			}
		})
	}()
	// Let the consumer settle at the end of the log. Send times stay
	// relative to base (which the receiver reads); the schedule starts now.
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	interval := float64(time.Second) / float64(rate)
	var sent int64
	// A sender that cannot keep the rate (its window or buffer full)
	// stops at 1.5 d: the records it did not send count as not sent, and
	// the achieved rate shows the shortfall.
	stopAt := start.Add(d + d/2)
	for sent < planned && time.Now().Before(stopAt) {
		due := int64(float64(time.Since(start)) / interval)
		if due > planned {
			due = planned
		}
		for ; sent < due; sent++ {
			if !time.Now().Before(stopAt) {
				break
			}
			v := payload(100)
			copy(v, id[:])
			binary.LittleEndian.PutUint64(v[8:16], uint64(time.Since(base)))
			if err := send(v); err != nil {
				return run{}, err
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
	el := time.Since(start)
	target.Store(sent)
	if got.Load() >= sent {
		allDone()
	}
	var recvErr error
	finished := false
	select {
	case <-allIn:
	case recvErr = <-recvDone:
		finished = true
	case <-time.After(10 * time.Second):
	}
	rcancel()
	// The histogram is written by the receiver only: wait until it stopped.
	if !finished {
		select {
		case recvErr = <-recvDone:
		case <-time.After(10 * time.Second):
			return run{}, errors.New("receiver did not stop")
		}
	}
	if recvErr != nil {
		return run{}, recvErr
	}
	n := got.Load()
	return run{records: n, bytes: n * 100, elapsed: el, hist: h, lost: sent - n, unsent: planned - sent}, nil
}

// kafkaProduceAsync produces through wisp's Kafka listener with franz-go,
// configured like the wisp client: linger 5 ms, acks=all, idempotent,
// no compression.
func kafkaProduceAsync(ctx context.Context, cl *kgo.Client, topic string, size int, d time.Duration) (run, error) {
	val := payload(size)
	var acked, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
			return
		}
		acked.Add(1)
	}
	start := time.Now()
	deadline := start.Add(d)
	for n := 0; ; n++ {
		if n&255 == 0 && time.Now().After(deadline) {
			break
		}
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: val}, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return run{}, err
	}
	el := time.Since(start)
	if p := firstErr.Load(); p != nil {
		return run{}, fmt.Errorf("%d records failed: %w", failed.Load(), *p)
	}
	return run{records: acked.Load(), bytes: acked.Load() * int64(size), elapsed: el}, nil
}

func newKafkaClient(addr string) (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxBufferedRecords(1<<20),
		kgo.ProducerBatchMaxBytes(1<<20),
		// franz-go compresses with snappy by default; the wisp client and
		// NATS send values as they are.
		kgo.ProducerBatchCompression(kgo.NoCompression()))
}

// httpBatch is the records per HTTP produce request, httpConns the
// requests in flight at once (one keep-alive connection each).
const (
	httpBatch = 100
	httpConns = 4
)

// httpProduce posts JSON bodies of httpBatch records to
// /v1/topics/{topic}/records from httpConns goroutines for d.
func httpProduce(ctx context.Context, addr, topic string, size int, d time.Duration) (run, error) {
	type rec struct {
		Value string `json:"value"`
	}
	recs := make([]rec, httpBatch)
	for i := range recs {
		recs[i].Value = string(payload(size))
	}
	body, err := json.Marshal(map[string]any{"records": recs})
	if err != nil {
		return run{}, err
	}
	url := "http://" + addr + "/v1/topics/" + topic + "/records"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: httpConns, MaxConnsPerHost: httpConns}}
	defer hc.CloseIdleConnections()
	var acked atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range httpConns {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				acked.Add(httpBatch)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	if firstErr != nil {
		return run{}, firstErr
	}
	return run{records: acked.Load(), bytes: acked.Load() * int64(size), elapsed: el}, nil
}

// payload is a value of size printable bytes (printable so the HTTP JSON
// body carries the same bytes).
func payload(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}
