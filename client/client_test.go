package client

import (
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
