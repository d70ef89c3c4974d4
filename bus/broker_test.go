package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/batch"
)

func openBroker(t *testing.T, dir string, mod ...func(*bus.Config)) *bus.Broker {
	t.Helper()
	cfg := bus.DefaultConfig()
	cfg.DataDir = dir
	for _, m := range mod {
		m(&cfg)
	}
	b, err := bus.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mkBatch(t *testing.T, opts batch.Options, vals ...string) []byte {
	t.Helper()
	recs := make([]batch.Record, len(vals))
	for i, v := range vals {
		recs[i] = batch.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(v), Timestamp: int64(1000 + i)}
	}
	b, err := batch.Build(opts, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fetchAll(t *testing.T, b *bus.Broker, topic string, p int32, from int64) []batch.Record {
	t.Helper()
	var out []batch.Record
	for {
		res, err := b.Fetch(context.Background(), topic, p, from, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Batches) == 0 {
			return out
		}
		err = batch.Each(res.Batches, func(h batch.Header, raw []byte) error {
			recs, err := batch.Records(raw)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if r.Offset >= from {
					out = append(out, r)
				}
			}
			from = h.NextOffset()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestTopicsPersistAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b := openBroker(t, dir)
	if _, err := b.CreateTopic(ctx, bus.TopicSpec{Name: "orders", Partitions: 3, Configs: map[string]string{"retention.ms": "60000"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateTopic(ctx, bus.TopicSpec{Name: "orders"}); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	for _, bad := range []string{"", "a/b", "..", "x y"} {
		if _, err := b.CreateTopic(ctx, bus.TopicSpec{Name: bad}); !errors.Is(err, kerr.InvalidTopicException) {
			t.Fatalf("create %q: %v", bad, err)
		}
	}
	if _, err := b.CreateTopic(ctx, bus.TopicSpec{Name: "x", Configs: map[string]string{"flush": "sometimes"}}); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("bad config: %v", err)
	}
	if _, err := b.Produce(ctx, "orders", 2, mkBatch(t, batch.NoProducer, "a", "b"), bus.AcksLeader); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateTopic(ctx, bus.TopicSpec{Name: "gone"}); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openBroker(t, dir)
	defer b.Close()
	topics := b.Topics()
	if len(topics) != 1 || topics[0].Name != "orders" || len(topics[0].Partitions) != 3 {
		t.Fatalf("after restart: %+v", topics)
	}
	if topics[0].Configs["retention.ms"] != "60000" || topics[0].Effective["flush"] != "always" {
		t.Fatalf("configs: %v / %v", topics[0].Configs, topics[0].Effective)
	}
	if got := fetchAll(t, b, "orders", 2, 0); len(got) != 2 || string(got[1].Value) != "b" || got[1].Offset != 1 {
		t.Fatalf("records after restart: %+v", got)
	}
	if _, err := b.Topic("gone"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("deleted topic: %v", err)
	}
}

func TestIdempotentProducerDropsDuplicates(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b := openBroker(t, dir)
	if _, err := b.CreateTopic(ctx, bus.TopicSpec{Name: "t"}); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := b.InitProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opts := batch.Options{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: 0}
	first := mkBatch(t, opts, "a", "b", "c")
	retry := append([]byte(nil), first...)
	r1, err := b.Produce(ctx, "t", 0, first, bus.AcksAll)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := b.Produce(ctx, "t", 0, retry, bus.AcksAll)
	if err != nil || !r2.Duplicate || r2.BaseOffset != r1.BaseOffset || r2.LastOffset != 2 {
		t.Fatalf("retry: %+v %v", r2, err)
	}
	opts.BaseSequence = 5 // gap: 3 and 4 missing
	if _, err := b.Produce(ctx, "t", 0, mkBatch(t, opts, "x"), bus.AcksAll); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("gap: %v", err)
	}
	opts.BaseSequence = 3
	next := mkBatch(t, opts, "d")
	if r, err := b.Produce(ctx, "t", 0, next, bus.AcksAll); err != nil || r.BaseOffset != 3 {
		t.Fatalf("next: %+v %v", r, err)
	}
	b.Close()

	// Producer state is rebuilt from the log: a retry after a restart is
	// still recognised.
	b = openBroker(t, dir)
	defer b.Close()
	opts.BaseSequence = 3
	if r, err := b.Produce(ctx, "t", 0, mkBatch(t, opts, "d"), bus.AcksAll); err != nil || !r.Duplicate || r.BaseOffset != 3 {
		t.Fatalf("retry after restart: %+v %v", r, err)
	}
	// A bumped epoch starts over at sequence 0 and fences the old epoch.
	bumped := batch.Options{ProducerID: pid, ProducerEpoch: epoch + 1, BaseSequence: 0}
	if _, err := b.Produce(ctx, "t", 0, mkBatch(t, bumped, "e"), bus.AcksAll); err != nil {
		t.Fatalf("bumped epoch: %v", err)
	}
	old := batch.Options{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: 4}
	if _, err := b.Produce(ctx, "t", 0, mkBatch(t, old, "z"), bus.AcksAll); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("fenced epoch: %v", err)
	}
	got := fetchAll(t, b, "t", 0, 0)
	if len(got) != 5 {
		t.Fatalf("want 5 records, got %d", len(got))
	}
	pid2, _, _ := b.InitProducerID(ctx)
	if pid2 <= pid {
		t.Fatalf("producer id reused after restart: %d then %d", pid, pid2)
	}
}

func TestProduceRejectsCorruptBatchAndWritesNothing(t *testing.T) {
	ctx := context.Background()
	b := openBroker(t, t.TempDir())
	defer b.Close()
	if _, err := b.CreateTopic(ctx, bus.TopicSpec{Name: "t"}); err != nil {
		t.Fatal(err)
	}
	good := mkBatch(t, batch.NoProducer, "a")
	bad := mkBatch(t, batch.NoProducer, "b")
	bad[len(bad)-1] ^= 0xff
	if _, err := b.Produce(ctx, "t", 0, append(good, bad...), bus.AcksLeader); !errors.Is(err, kerr.CorruptMessage) {
		t.Fatalf("corrupt: %v", err)
	}
	if _, err := b.Produce(ctx, "t", 0, good[:30], bus.AcksLeader); !errors.Is(err, kerr.CorruptMessage) {
		t.Fatalf("short: %v", err)
	}
	if info, _ := b.Topic("t"); info.Partitions[0].EndOffset != 0 {
		t.Fatalf("something was written: %+v", info.Partitions[0])
	}
	if _, err := b.Produce(ctx, "nope", 0, good, bus.AcksLeader); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v", err)
	}
}

func TestFetchWatchAndListOffsets(t *testing.T) {
	ctx := context.Background()
	b := openBroker(t, t.TempDir())
	defer b.Close()
	if _, err := b.EnsureTopic(ctx, "auto"); err != nil {
		t.Fatal(err)
	}
	ch, err := b.Watch("auto", 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = b.Produce(ctx, "auto", 0, mkBatch(t, batch.NoProducer, "x", "y"), bus.AcksLeader)
	}()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("watch never fired")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if off, _, _ := b.ListOffset("auto", 0, bus.Latest); off == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("high watermark never reached 2")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if off, ts, err := b.ListOffset("auto", 0, 1001); err != nil || off != 1 || ts != 1001 {
		t.Fatalf("by time: %d %d %v", off, ts, err)
	}
	if off, _, err := b.ListOffset("auto", 0, 99999); err != nil || off != -1 {
		t.Fatalf("after last: %d %v", off, err)
	}
	if _, err := b.Fetch(ctx, "auto", 0, 3, 1<<20); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("out of range: %v", err)
	}
	if res, err := b.Fetch(ctx, "auto", 0, 2, 1<<20); err != nil || len(res.Batches) != 0 || res.HighWatermark != 2 {
		t.Fatalf("at end: %+v %v", res, err)
	}
}
