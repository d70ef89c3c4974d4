package client

import (
	"context"
	"sync"
	"testing"
	"time"
)

// BenchmarkProducerAppend is the producer's cost per record on the
// caller's goroutine (partition, timestamp, encode, buffer accounting) and
// per finished batch, with no network: batches are completed as soon as
// they are sealed. 100 B values, no key, one partition, default options.
func BenchmarkProducerAppend(b *testing.B) {
	c := defaultCfg()
	p := &producer{cfg: &c, topics: map[string]*ptopic{}, wake: make(chan struct{}, 1)}
	p.space = sync.NewCond(&p.mu)
	pp := &ppart{topic: "bench", leader: -1}
	p.topics["bench"] = &ptopic{name: "bench", parts: []*ppart{pp}, loadedAt: time.Now().Add(time.Hour)}
	p.parts = []*ppart{pp}
	cl := &Client{clientState: &clientState{prod: p}}
	// Records are reused once their batch is done, as a caller's would be
	// garbage: the benchmark measures the producer, not the allocator.
	recs := make([]Record, 1<<15)
	val := make([]byte, 100)
	ctx := context.Background()
	promise := func(*Record, error) {}
	b.ReportAllocs()
	b.SetBytes(int64(len(val)))
	i := 0
	for b.Loop() {
		r := &recs[i%len(recs)]
		*r = Record{Topic: "bench", Value: val}
		cl.Produce(ctx, r, promise)
		i++
		if len(pp.ready) > 0 || i%(len(recs)/2) == 0 {
			p.mu.Lock()
			p.sealLocked(pp)
			done := pp.ready
			pp.ready = nil
			p.mu.Unlock()
			for _, bt := range done {
				p.runCallbacks([]completion{{recs: bt.recs}})
				p.release(bt)
			}
		}
	}
}
