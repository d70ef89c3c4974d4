package client

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestRoundTripEveryCodec(t *testing.T) {
	n := startNode(t, map[string]string{"flush": "os"})
	for _, codec := range []Codec{NoCompression, Gzip, Snappy, LZ4, Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			c := n.client(t, Compression(codec))
			topic := "rt-" + codec.String()
			if _, err := c.CreateTopic(ctx, TopicSpec{Name: topic, Partitions: 3}); err != nil {
				t.Fatal(err)
			}
			const total = 3000
			want := map[string]string{}
			errs := make(chan error, total)
			for i := range total {
				key := fmt.Sprintf("k%d", i%50)
				val := fmt.Sprintf("v%d", i)
				want[val] = key
				c.Produce(ctx, &Record{Topic: topic, Key: []byte(key), Value: []byte(val),
					Headers: []Header{{Key: "i", Value: []byte(val)}}}, func(r *Record, err error) { errs <- err })
			}
			if err := c.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			for range total {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			k, err := c.NewConsumer(ctx, Topics(topic))
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close(ctx)
			got := 0
			last := map[int32]int64{}
			for rec, err := range k.Records(ctx) {
				if err != nil {
					t.Fatal(err)
				}
				v := string(rec.Value)
				if want[v] != string(rec.Key) {
					t.Fatalf("record %s: key %q value %q", rec, rec.Key, rec.Value)
				}
				if len(rec.Headers) != 1 || string(rec.Headers[0].Value) != v {
					t.Fatalf("record %s: headers %v", rec, rec.Headers)
				}
				if rec.Partition != KeyPartition(rec.Key, 3) {
					t.Fatalf("key %q on partition %d, want %d", rec.Key, rec.Partition, KeyPartition(rec.Key, 3))
				}
				if o, ok := last[rec.Partition]; ok && rec.Offset != o+1 {
					t.Fatalf("partition %d: offset %d after %d", rec.Partition, rec.Offset, o)
				}
				last[rec.Partition] = rec.Offset
				delete(want, v)
				if got++; got == total {
					break
				}
			}
			if len(want) != 0 {
				t.Fatalf("%d records missing", len(want))
			}
		})
	}
}

func TestProduceSyncFillsOffsets(t *testing.T) {
	n := startNode(t, nil)
	ctx := testCtx(t, 20*time.Second)
	c := n.client(t)
	recs := []*Record{{Topic: "sync", Value: []byte("a")}, {Topic: "sync", Value: []byte("b")}}
	if err := c.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	if recs[0].Offset != 0 || recs[1].Offset != 1 {
		t.Fatalf("offsets %d %d", recs[0].Offset, recs[1].Offset)
	}
	err := c.ProduceSync(ctx, &Record{Topic: "bad topic!", Value: []byte("x")})
	if !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("bad topic: %v", err)
	}
}

func TestPollAcksNoneAndNonIdempotent(t *testing.T) {
	n := startNode(t, map[string]string{"flush": "os"})
	ctx := testCtx(t, 20*time.Second)
	for _, opts := range [][]Opt{{RequiredAcks(AcksNone)}, {DisableIdempotentWrite(), RequiredAcks(AcksLeader)}} {
		c := n.client(t, opts...)
		topic := fmt.Sprintf("poll-%d", len(opts))
		if _, err := c.CreateTopic(ctx, TopicSpec{Name: topic}); err != nil {
			t.Fatal(err)
		}
		for i := range 300 {
			c.Produce(ctx, &Record{Topic: topic, Value: []byte(fmt.Sprint(i))}, nil)
		}
		if err := c.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		k, err := c.NewConsumer(ctx, Topics(topic))
		if err != nil {
			t.Fatal(err)
		}
		next := int64(0)
		for next < 300 {
			recs, err := k.Poll(ctx)
			if err != nil {
				t.Fatalf("%s: %v (at %d)", topic, err, next)
			}
			for _, r := range recs {
				if r.Offset != next || string(r.Value) != fmt.Sprint(next) {
					t.Fatalf("%s: got %s %q, want offset %d", topic, r, r.Value, next)
				}
				next++
			}
		}
		k.Close(ctx)
	}
}

func TestBufferBackpressure(t *testing.T) {
	n := startNode(t, map[string]string{"flush": "os"})
	ctx := testCtx(t, 20*time.Second)
	c := n.client(t, MaxBufferedRecords(10), Linger(time.Hour))
	// With linger an hour, the buffer only drains because a full buffer
	// sends what lingers; Produce blocks meanwhile instead of growing.
	for i := range 100 {
		c.Produce(ctx, &Record{Topic: "bp", Value: []byte{byte(i)}}, nil)
		if b := c.BufferedRecords(); b > 10 {
			t.Fatalf("%d records buffered, limit 10", b)
		}
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A context that has ended while the buffer is full fails the record
	// instead of blocking.
	full := n.client(t, MaxBufferedRecords(1), Linger(time.Hour))
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	errs := make(chan error, 2)
	full.Produce(ctx, &Record{Topic: "bp", Value: []byte("a")}, func(_ *Record, err error) { errs <- err })
	full.Produce(canceled, &Record{Topic: "bp", Value: []byte("b")}, func(_ *Record, err error) { errs <- err })
	if err := full.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// b fails at once (Produce calls its promise before returning), a
	// is written.
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("produce with an ended context on a full buffer: %v", err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}
