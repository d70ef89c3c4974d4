package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestFailoverLoop checks that the kill comes after 200 acknowledgements
// and that the figure is the time to the first acknowledgement after it,
// however many calls fail meanwhile.
func TestFailoverLoop(t *testing.T) {
	var acks, kills int
	var killedAt time.Time
	const outage = 150 * time.Millisecond
	took, err := failoverLoop(context.Background(),
		func(context.Context) error {
			if !killedAt.IsZero() && time.Since(killedAt) < outage {
				return errors.New("leader gone")
			}
			acks++
			return nil
		},
		func() error {
			kills++
			if acks != 200 {
				t.Errorf("killed after %d acks, want 200", acks)
			}
			killedAt = time.Now()
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if kills != 1 {
		t.Errorf("%d kills", kills)
	}
	if took < outage || took > outage+time.Second {
		t.Errorf("took %v, want just over %v", took, outage)
	}

	// A failure before the kill is the producer's, not a failover.
	if _, err := failoverLoop(context.Background(), func(context.Context) error { return errors.New("no topic") },
		func() error { t.Error("killed"); return nil }); err == nil {
		t.Error("no error for a producer failing from the start")
	}
}

// TestE2ERun runs the fixed-rate loop over an in-memory "system": one that
// keeps the rate receives everything, and one whose send blocks stops at
// 1.5 d and reports what it did not send.
func TestE2ERun(t *testing.T) {
	for _, c := range []struct {
		name      string
		sendDelay time.Duration
		wantAll   bool
	}{{"keeps up", 0, true}, {"falls behind", 2 * time.Millisecond, false}} {
		t.Run(c.name, func(t *testing.T) {
			ch := make(chan []byte, 1<<16)
			var sends atomic.Int64
			send := func(v []byte) error {
				if c.sendDelay > 0 {
					time.Sleep(c.sendDelay)
				}
				sends.Add(1)
				ch <- append([]byte(nil), v...)
				return nil
			}
			recv := func(ctx context.Context, each func([]byte)) error {
				for {
					select {
					case v := <-ch:
						each(v)
					case <-ctx.Done():
						return nil
					}
				}
			}
			const rate, d = 2000, 500 * time.Millisecond
			r, err := e2eRun(context.Background(), send, recv, rate, d)
			if err != nil {
				t.Fatal(err)
			}
			planned := int64(rate * d.Seconds())
			if r.lost != 0 || r.records != sends.Load() || r.records+r.unsent != planned {
				t.Fatalf("records %d, lost %d, unsent %d, sends %d; planned %d", r.records, r.lost, r.unsent, sends.Load(), planned)
			}
			if c.wantAll != (r.unsent == 0) {
				t.Fatalf("unsent %d", r.unsent)
			}
			if r.elapsed > d+d/2+100*time.Millisecond {
				t.Fatalf("elapsed %v: the sender did not stop at 1.5 d", r.elapsed)
			}
			if r.hist.TotalCount() != r.records {
				t.Fatalf("histogram holds %d of %d", r.hist.TotalCount(), r.records)
			}
		})
	}
}
