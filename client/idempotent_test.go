package client

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// The QUIC connection is closed underneath a producer several times while
// batches are in flight. Retries resend the same batches (same producer id
// and sequences), so the broker drops the copies it already has: every
// record is in the log exactly once, and in order per partition.
func TestIdempotentRetriesAcrossConnectionDrops(t *testing.T) {
	n := startNode(t, map[string]string{"flush": "os"})
	ctx := testCtx(t, 50*time.Second)
	c := n.client(t, Linger(time.Millisecond), BatchMaxBytes(8<<10), RetryBackoff(10*time.Millisecond))
	const topic, total = "idem", 150000 // long enough for 5 drops on a fast machine
	if _, err := c.CreateTopic(ctx, TopicSpec{Name: topic, Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	var failed atomic.Int64
	var firstErr atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			c.Produce(ctx, &Record{Topic: topic, Key: []byte(strconv.Itoa(i % 10)), Value: []byte(strconv.Itoa(i))},
				func(r *Record, err error) {
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
				})
		}
	}()
	drops := 0
	for drops < 5 {
		time.Sleep(5 * time.Millisecond)
		c.prod.mu.Lock()
		inflight := 0
		var conn *quic.Conn
		for _, s := range c.prod.streams {
			inflight += len(s.pending)
			conn = s.conn
		}
		c.prod.mu.Unlock()
		if conn == nil || inflight == 0 {
			select {
			case <-done:
				if c.BufferedRecords() == 0 {
					t.Fatalf("production finished after %d drops; make it longer", drops)
				}
			default:
			}
			continue
		}
		_ = conn.CloseWithError(0, "test: connection drop")
		drops++
	}
	<-done
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if failed.Load() > 0 {
		t.Fatalf("%d records failed; first: %v", failed.Load(), firstErr.Load())
	}
	info, err := c.DescribeTopic(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var inLog int64
	for _, p := range info.Partitions {
		inLog += p.HighWatermark
	}
	if inLog != total {
		t.Errorf("log holds %d records, produced %d", inLog, total)
	}
	k, err := c.NewConsumer(ctx, Topics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(context.Background())
	seen := make([]int, total)
	last := map[int32]int{}
	got := 0
	for rec, err := range k.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		v, _ := strconv.Atoi(string(rec.Value))
		seen[v]++
		if prev, ok := last[rec.Partition]; ok && v <= prev {
			t.Fatalf("partition %d: value %d after %d (reordered)", rec.Partition, v, prev)
		}
		last[rec.Partition] = v
		if got++; int64(got) == inLog {
			break
		}
	}
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("record %d is in the log %d times", v, n)
		}
	}
	if c.prod.resent.Load() == 0 {
		t.Fatal("no batch was resent: the drops did not hit batches in flight")
	}
	t.Logf("%d connection drops, %d batches resent, %d records exactly once", drops, c.prod.resent.Load(), total)
}
