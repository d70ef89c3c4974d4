package kafkaapi

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/batch"
)

func createTopic(t testing.TB, ts *testServer, name string, partitions int32) {
	t.Helper()
	if _, err := ts.b.CreateTopic(context.Background(), bus.TopicSpec{Name: name, Partitions: partitions}); err != nil {
		t.Fatal(err)
	}
}

// consumeN reads n records with a direct (group-less) consumer from the
// start of topic.
func consumeN(t testing.TB, ts *testServer, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	opts = append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)
	cl := ts.client(t, opts...)
	ctx := ctxTimeout(t, 20*time.Second)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(out), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Errorf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	if len(out) != n {
		t.Fatalf("consumed %d records, want %d", len(out), n)
	}
	return out
}

// TestKgoIdempotentProduce produces with franz-go's default idempotent
// producer to several partitions and reads everything back.
func TestKgoIdempotentProduce(t *testing.T) {
	ts := startServer(t)
	createTopic(t, ts, "idem", 3)
	cl := ts.client(t, kgo.DefaultProduceTopic("idem"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	ctx := ctxTimeout(t, 20*time.Second)
	const n = 300
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf("value-%d", i)),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte{byte(i)}}}})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The producer id comes from InitProducerId: every batch carries it.
	for _, r := range recs {
		if r.ProducerID < 0 {
			t.Fatalf("record %s produced without a producer id", r.Key)
		}
	}
	got := consumeN(t, ts, "idem", n)
	seen := map[string]bool{}
	for _, r := range got {
		i, _ := strconv.Atoi(string(r.Key))
		if string(r.Value) != fmt.Sprintf("value-%d", i) || len(r.Headers) != 1 || r.Headers[0].Value[0] != byte(i) {
			t.Fatalf("record %s: value %q headers %v", r.Key, r.Value, r.Headers)
		}
		if seen[string(r.Key)] {
			t.Fatalf("record %s twice", r.Key)
		}
		seen[string(r.Key)] = true
	}
	info, _ := ts.b.Topic("idem")
	for _, p := range info.Partitions {
		if p.HighWatermark != n/3 {
			t.Errorf("partition %d holds %d records, want %d", p.Partition, p.HighWatermark, n/3)
		}
	}
}

// TestKgoGroupConsume runs a group of two franz-go members: every record
// is consumed once, and each member gets part of the partitions.
func TestKgoGroupConsume(t *testing.T) {
	ts := startServer(t)
	const topic, parts, n = "grouped", 4, 400
	createTopic(t, ts, topic, parts)

	type member struct {
		cl       *kgo.Client
		mu       sync.Mutex
		assigned int
	}
	var members [2]*member
	for i := range members {
		m := &member{}
		m.cl = ts.client(t, kgo.ConsumerGroup("g1"), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.Balancers(kgo.RangeBalancer()),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
				m.mu.Lock()
				m.assigned = len(a[topic])
				m.mu.Unlock()
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
				m.mu.Lock()
				m.assigned -= len(r[topic])
				m.mu.Unlock()
			}))
		members[i] = m
	}
	// Both members poll until the group settles with two partitions each.
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	got := map[string]int{}
	for _, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				fs := m.cl.PollFetches(ctx)
				fs.EachError(func(tp string, p int32, err error) {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("fetch %s/%d: %v", tp, p, err)
					}
				})
				mu.Lock()
				for _, r := range fs.Records() {
					got[string(r.Value)]++
				}
				mu.Unlock()
			}
		}()
	}
	checkFor(t, 20*time.Second, func() error {
		for i, m := range members {
			m.mu.Lock()
			a := m.assigned
			m.mu.Unlock()
			if a != parts/2 {
				return fmt.Errorf("member %d has %d partitions", i, a)
			}
		}
		return nil
	})
	pcl := ts.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, kgo.StringRecord(strconv.Itoa(i)))
	}
	if err := pcl.ProduceSync(ctxTimeout(t, 20*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) != n {
			return fmt.Errorf("consumed %d distinct records of %d", len(got), n)
		}
		return nil
	})
	cancel()
	wg.Wait()
	for v, c := range got {
		if c != 1 {
			t.Errorf("record %s consumed %d times", v, c)
		}
	}
	// Commit, then check the committed offsets through OffsetFetch.
	for _, m := range members {
		if err := m.cl.CommitUncommittedOffsets(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	offs, err := ts.b.Groups().FetchOffsets("g1", nil)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for _, oc := range offs {
		total += oc.Offset
	}
	if total != n {
		t.Errorf("committed offsets add up to %d, want %d (%v)", total, n, offs)
	}
	d, err := ts.b.Groups().DescribeGroup("g1")
	if err != nil || d.State != "Stable" || len(d.Members) != 2 {
		t.Errorf("group: %+v, %v", d, err)
	}
}

// TestKgoTransactionsUnsupported checks that a transactional producer
// fails at once with a clear, non-retriable error instead of hanging.
func TestKgoTransactionsUnsupported(t *testing.T) {
	ts := startServer(t)
	createTopic(t, ts, "tx", 1)
	cl := ts.client(t, kgo.TransactionalID("my-txn"), kgo.DefaultProduceTopic("tx"))
	ctx := ctxTimeout(t, 15*time.Second)
	start := time.Now()
	err := cl.BeginTransaction()
	if err == nil {
		err = cl.ProduceSync(ctx, kgo.StringRecord("x")).FirstErr()
	}
	if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		t.Fatalf("transactional produce: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to fail", d)
	}
	// InitProducerId with a transactional id, asked directly.
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = kmsg.StringPtr("my-txn")
	req.TransactionTimeoutMillis = 60000
	// Sent to the broker itself: through the client, the request would
	// stop at FindCoordinator, which refuses transactional ids too.
	kresp, err := ts.client(t).Broker(1).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp := kresp.(*kmsg.InitProducerIDResponse); resp.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Errorf("InitProducerId(transactional): error %d", resp.ErrorCode)
	}
	if hw := mustTopic(t, ts, "tx").Partitions[0].HighWatermark; hw != 0 {
		t.Errorf("transactional records landed: high watermark %d", hw)
	}
}

func mustTopic(t testing.TB, ts *testServer, name string) bus.TopicInfo {
	t.Helper()
	info, err := ts.b.Topic(name)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestKgoListOffsetsByTime seeks by timestamp through ListOffsets.
func TestKgoListOffsetsByTime(t *testing.T) {
	ts := startServer(t)
	createTopic(t, ts, "times", 1)
	cl := ts.client(t, kgo.DefaultProduceTopic("times"))
	ctx := ctxTimeout(t, 20*time.Second)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range 10 {
		r := &kgo.Record{Value: []byte(strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Minute)}
		// One record per request, so that each lands in its own batch and
		// the time index sees every timestamp.
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		ts   int64
		off  int64
	}{
		{"earliest", -2, 0},
		{"latest", -1, 10},
		{"before all", base.Add(-time.Minute).UnixMilli(), 0},
		{"exact", base.Add(4 * time.Minute).UnixMilli(), 4},
		{"between", base.Add(4*time.Minute + time.Second).UnixMilli(), 5},
		{"after all", base.Add(time.Hour).UnixMilli(), -1},
	}
	for _, v := range []int16{0, 1, 4, 6} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("v%d/%s", v, c.name), func(t *testing.T) {
				req := kmsg.NewPtrListOffsetsRequest()
				req.Version = v
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic = "times"
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Timestamp, rp.MaxNumOffsets = c.ts, 1
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				br := cl.Broker(1)
				kresp, err := br.RetriableRequest(ctx, pinVersion{req, v})
				if err != nil {
					t.Fatal(err)
				}
				p := kresp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
				if p.ErrorCode != 0 {
					t.Fatalf("error %d", p.ErrorCode)
				}
				off := p.Offset
				if v == 0 {
					off = -1
					if len(p.OldStyleOffsets) > 0 {
						off = p.OldStyleOffsets[0]
					}
				}
				if off != c.off {
					t.Fatalf("offset %d, want %d", off, c.off)
				}
				if v >= 1 && c.ts >= 0 && c.off >= 0 && p.Timestamp != base.Add(time.Duration(c.off)*time.Minute).UnixMilli() {
					t.Errorf("timestamp %d", p.Timestamp)
				}
			})
		}
	}
	// And through the consumer: start at a point in time.
	got := consumeN(t, ts, "times", 3, kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(base.Add(7*time.Minute).UnixMilli())))
	if string(got[0].Value) != "7" {
		t.Errorf("consumer seeking by time starts at %q, want 7", got[0].Value)
	}
}

// pinVersion makes kgo issue a request at exactly one version.
type pinVersion struct {
	kmsg.Request
	v int16
}

func (p pinVersion) MaxVersion() int16 { return p.v }

// TestKgoCompression produces with every codec; the broker stores the
// batch as sent (codec bits intact) and consumers decode it.
func TestKgoCompression(t *testing.T) {
	ts := startServer(t)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
		want  batch.Codec
	}{
		{"none", kgo.NoCompression(), batch.None},
		{"gzip", kgo.GzipCompression(), batch.Gzip},
		{"snappy", kgo.SnappyCompression(), batch.Snappy},
		{"lz4", kgo.Lz4Compression(), batch.LZ4},
		{"zstd", kgo.ZstdCompression(), batch.Zstd},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "codec-" + c.name
			createTopic(t, ts, topic, 1)
			cl := ts.client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(c.codec))
			var recs []*kgo.Record
			for i := range 50 {
				recs = append(recs, kgo.StringRecord(fmt.Sprintf("compressible %s record %d %s", c.name, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")))
			}
			if err := cl.ProduceSync(ctxTimeout(t, 10*time.Second), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			res, err := ts.b.Fetch(context.Background(), topic, 0, 0, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			h, err := batch.ParseHeader(res.Batches)
			if err != nil {
				t.Fatal(err)
			}
			if h.Codec() != c.want {
				t.Errorf("stored codec %v, want %v", h.Codec(), c.want)
			}
			got := consumeN(t, ts, topic, len(recs))
			for i, r := range got {
				if string(r.Value) != string(recs[i].Value) {
					t.Fatalf("record %d: %q", i, r.Value)
				}
			}
		})
	}
}

// TestKafkaToBus checks that records produced over Kafka are what the bus
// returns, byte for byte: keys, values, headers, timestamps.
func TestKafkaToBus(t *testing.T) {
	ts := startServer(t)
	createTopic(t, ts, "k2b", 1)
	cl := ts.client(t, kgo.DefaultProduceTopic("k2b"))
	base := time.UnixMilli(1700000000000)
	var recs []*kgo.Record
	for i := range 20 {
		r := &kgo.Record{Value: []byte(fmt.Sprintf("v%d", i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
		switch i % 3 {
		case 0:
			r.Key = []byte(fmt.Sprintf("k%d", i))
		case 1:
			r.Key = []byte{} // empty, not null
			r.Headers = []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: nil}}
		}
		if i == 7 {
			r.Value = nil // a tombstone
		}
		recs = append(recs, r)
	}
	if err := cl.ProduceSync(ctxTimeout(t, 10*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var got []batch.Record
	for off := int64(0); off < int64(len(recs)); {
		res, err := ts.b.Fetch(context.Background(), "k2b", 0, off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		err = batch.Each(res.Batches, func(h batch.Header, b []byte) error {
			rs, err := batch.Records(b)
			got = append(got, rs...)
			off = h.NextOffset()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(recs) {
		t.Fatalf("bus has %d records, want %d", len(got), len(recs))
	}
	for i, r := range recs {
		g := got[i]
		if g.Offset != int64(i) || g.Timestamp != r.Timestamp.UnixMilli() || !sameBytes(g.Key, r.Key) || !sameBytes(g.Value, r.Value) {
			t.Errorf("record %d: bus %+v, kafka key %q value %q ts %d", i, g, r.Key, r.Value, r.Timestamp.UnixMilli())
		}
		if len(g.Headers) != len(r.Headers) {
			t.Fatalf("record %d: headers %v, want %v", i, g.Headers, r.Headers)
		}
		for j, h := range r.Headers {
			if g.Headers[j].Key != h.Key || !sameBytes(g.Headers[j].Value, h.Value) {
				t.Errorf("record %d header %d: %+v, want %+v", i, j, g.Headers[j], h)
			}
		}
	}
}

// sameBytes compares with null and empty told apart.
func sameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && string(a) == string(b)
}

// TestBusToKafka is the reverse: a batch built with internal/batch and
// appended with bus.Produce reads back identically with franz-go.
func TestBusToKafka(t *testing.T) {
	ts := startServer(t)
	createTopic(t, ts, "b2k", 1)
	base := int64(1700000000000)
	var want []batch.Record
	for i := range 30 {
		r := batch.Record{Timestamp: base + int64(i), Value: []byte(fmt.Sprintf("bus-%d", i))}
		if i%2 == 0 {
			r.Key = []byte(fmt.Sprintf("key-%d", i))
			r.Headers = []batch.RecordHeader{{Key: "n", Value: []byte(strconv.Itoa(i))}, {Key: "null"}}
		}
		want = append(want, r)
	}
	for i, codec := range []batch.Codec{batch.None, batch.Zstd, batch.Snappy} {
		b, err := batch.Build(batch.Options{Codec: codec, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, want[i*10:(i+1)*10])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.b.Produce(context.Background(), "b2k", 0, b, bus.AcksLeader); err != nil {
			t.Fatal(err)
		}
	}
	got := consumeN(t, ts, "b2k", len(want))
	sort.Slice(got, func(i, j int) bool { return got[i].Offset < got[j].Offset })
	for i, w := range want {
		g := got[i]
		if g.Offset != int64(i) || g.Timestamp.UnixMilli() != w.Timestamp || !sameBytes(g.Key, w.Key) || !sameBytes(g.Value, w.Value) {
			t.Errorf("record %d: kafka key %q value %q ts %d offset %d, want %+v", i, g.Key, g.Value, g.Timestamp.UnixMilli(), g.Offset, w)
		}
		if len(g.Headers) != len(w.Headers) {
			t.Fatalf("record %d: headers %v, want %v", i, g.Headers, w.Headers)
		}
		for j, h := range w.Headers {
			if g.Headers[j].Key != h.Key || !sameBytes(g.Headers[j].Value, h.Value) {
				t.Errorf("record %d header %d: %+v, want %+v", i, j, g.Headers[j], h)
			}
		}
	}
}
