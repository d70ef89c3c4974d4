package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsSys drives a NATS JetStream server with nats.go's jetstream package.
// Each destination is a stream (file storage, R1) with one subject. The
// durability is the server's: sync_interval default (2 min) or always.
type natsSys struct {
	node  *natsNode   // the first server
	nodes []*natsNode // every server of a cluster (one alone)
	// url lists every server, for the clients.
	url string
	nc  *nats.Conn
	js  jetstream.JetStream
	// replicas of the streams it creates.
	replicas int
}

// natsWindow is PublishAsync's bound on publishes awaiting their ack, and
// natsFetch the batch of one pull Fetch; both were picked as the fastest
// of a few sizes on the development machine (see docs/benchmarks.md).
var (
	natsWindow = 1000
	natsFetch  = 1000
)

// newNATSSys connects to the servers (one, or the members of a cluster);
// streams it creates have replicas replicas.
func newNATSSys(ctx context.Context, replicas int, nodes ...*natsNode) (*natsSys, error) {
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.url)
	}
	url := strings.Join(urls, ",")
	nc, js, err := natsConnect(url)
	if err != nil {
		return nil, err
	}
	// Wait until JetStream answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			nc.Close()
			return nil, fmt.Errorf("jetstream not answering: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &natsSys{node: nodes[0], nodes: nodes, url: url, nc: nc, js: js, replicas: replicas}, nil
}

func natsConnect(url string, opts ...jetstream.JetStreamOpt) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		return nil, nil, fmt.Errorf("nats connect: %w", err)
	}
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

func (n *natsSys) close() { n.nc.Close() }

// server is the CPU meter of every server.
func (n *natsSys) server() cpuMeter {
	var g procGroup
	for _, x := range n.nodes {
		g = append(g, x.proc)
	}
	return g
}

func (n *natsSys) streamName(dest string) string {
	return "BENCH_" + strings.NewReplacer("-", "_", ".", "_").Replace(dest)
}

// stream creates (once) the stream of dest and returns its name and subject.
func (n *natsSys) stream(ctx context.Context, dest string) (string, string, error) {
	name := n.streamName(dest)
	subj := "bench." + dest
	_, err := n.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{subj},
		Storage: jetstream.FileStorage, Replicas: max(1, n.replicas),
	})
	if err != nil {
		return "", "", fmt.Errorf("create stream %s: %w", name, err)
	}
	return name, subj, nil
}

func (n *natsSys) records(ctx context.Context, stream string) (int64, error) {
	s, err := n.js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int64(info.State.Msgs), nil
}

// natsPublisher is a connection of its own with the async window set.
type natsPublisher struct {
	nc            *nats.Conn
	js            jetstream.JetStream
	acked, failed atomic.Int64
	firstErr      atomic.Pointer[error]
	stallRetries  atomic.Int64
}

func (n *natsSys) publisher() (*natsPublisher, error) {
	p := &natsPublisher{}
	nc, js, err := natsConnect(n.url,
		jetstream.WithPublishAsyncMaxPending(natsWindow),
		jetstream.WithPublishAsyncAckHandler(func(jetstream.JetStream, *nats.Msg, *jetstream.PubAck) {
			p.acked.Add(1)
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			p.failed.Add(1)
			p.firstErr.CompareAndSwap(nil, &err)
		}))
	if err != nil {
		return nil, err
	}
	p.nc, p.js = nc, js
	return p, nil
}

func (p *natsPublisher) close() { p.nc.Close() }

// publishAsync is one PublishAsync call, retried while the window is full.
func (p *natsPublisher) publishAsync(subj string, val []byte) error {
	for {
		_, err := p.js.PublishAsync(subj, val, jetstream.WithStallWait(10*time.Second))
		if err == nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			p.stallRetries.Add(1)
			continue
		}
		return err
	}
}

func (p *natsPublisher) wait(ctx context.Context) error {
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(60 * time.Second):
		return fmt.Errorf("%d async publishes still pending after 60s", p.js.PublishAsyncPending())
	}
	if e := p.firstErr.Load(); e != nil {
		return fmt.Errorf("%d publishes failed: %w", p.failed.Load(), *e)
	}
	return nil
}

// natsProduceAsync publishes with PublishAsync (at most natsWindow
// unacknowledged) for d, then waits for every ack.
func natsProduceAsync(ctx context.Context, p *natsPublisher, subj string, size int, d time.Duration) (run, error) {
	val := payload(size)
	a0 := p.acked.Load()
	start := time.Now()
	deadline := start.Add(d)
	for n := 0; ; n++ {
		if n&255 == 0 && time.Now().After(deadline) {
			break
		}
		if err := p.publishAsync(subj, val); err != nil {
			return run{}, err
		}
	}
	if err := p.wait(ctx); err != nil {
		return run{}, err
	}
	el := time.Since(start)
	acked := p.acked.Load() - a0
	return run{records: acked, bytes: acked * int64(size), elapsed: el}, nil
}

// natsProduceSync publishes one message at a time with Publish (waits for
// the PubAck), recording each call's latency.
func natsProduceSync(ctx context.Context, js jetstream.JetStream, subj string, size int, d time.Duration) (run, error) {
	val := payload(size)
	h := newHist()
	start := time.Now()
	deadline := start.Add(d)
	var n int64
	for time.Now().Before(deadline) {
		t0 := time.Now()
		if _, err := js.Publish(ctx, subj, val); err != nil {
			return run{}, err
		}
		_ = h.RecordValue(int64(time.Since(t0)))
		n++
	}
	el := time.Since(start)
	return run{records: n, bytes: n * int64(size), elapsed: el, hist: h}, nil
}

// natsConsume reads the stream from its first message with an ephemeral
// pull consumer (AckNone, as wisp's group-less consumer commits nothing)
// in Fetch batches of natsFetch, until it has max messages or d has passed.
// Creating the consumer is inside the time.
func natsConsume(ctx context.Context, js jetstream.JetStream, stream string, max int64, d time.Duration) (run, error) {
	start := time.Now()
	deadline := start.Add(d)
	cons, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
		AckPolicy: jetstream.AckNonePolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return run{}, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteConsumer(dctx, stream, cons.CachedInfo().Name)
	}()
	var got, nb int64
	for got < max && time.Now().Before(deadline) {
		batch, err := cons.Fetch(natsFetch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return run{}, err
		}
		for m := range batch.Messages() {
			got++
			nb += int64(len(m.Data()))
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return run{}, err
		}
	}
	el := time.Since(start)
	return run{records: got, bytes: nb, elapsed: el}, nil
}

// natsE2E publishes at a fixed rate with PublishAsync and measures arrival
// on an ephemeral pull consumer (AckNone, DeliverNew) iterated with
// Messages(), which keeps pull requests outstanding, on a second
// connection.
func natsE2E(ctx context.Context, p *natsPublisher, js jetstream.JetStream, stream, subj string, rate int, d time.Duration) (run, error) {
	cons, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
		AckPolicy: jetstream.AckNonePolicy, DeliverPolicy: jetstream.DeliverNewPolicy,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return run{}, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteConsumer(dctx, stream, cons.CachedInfo().Name)
	}()
	msgs, err := cons.Messages()
	if err != nil {
		return run{}, err
	}
	send := func(v []byte) error { return p.publishAsync(subj, v) }
	recv := func(rctx context.Context, each func([]byte)) error {
		stop := context.AfterFunc(rctx, msgs.Stop)
		defer stop()
		for {
			m, err := msgs.Next()
			if err != nil {
				if rctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return nil
				}
				return err
			}
			each(m.Data())
		}
	}
	r, err := e2eRun(ctx, send, recv, rate, d)
	if err == nil {
		err = p.wait(ctx)
	}
	return r, err
}
