package loadgen

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/internal/testnode"
)

// The tests are named TestBench* so that `go test -run Bench` selects
// them with the wisp bench command's.

func TestBenchSplit(t *testing.T) {
	for _, c := range []struct {
		n    int64
		k    int
		want []int64
	}{
		{10, 1, []int64{10}},
		{10, 3, []int64{4, 3, 3}},
		{2, 3, []int64{1, 1, 0}},
		{0, 2, []int64{0, 0}},
	} {
		var sum int64
		for i, w := range c.want {
			if got := split(c.n, c.k, i); got != w {
				t.Errorf("split(%d, %d, %d) = %d, want %d", c.n, c.k, i, got, w)
			}
			sum += split(c.n, c.k, i)
		}
		if sum != c.n {
			t.Errorf("split(%d, %d, ·) sums to %d", c.n, c.k, sum)
		}
	}
	parts := []client.PartitionInfo{{Partition: 0}, {Partition: 1}, {Partition: 2}, {Partition: 3}, {Partition: 4}}
	got := [][]int32{partitionShare(parts, 2, 0), partitionShare(parts, 2, 1)}
	if len(got[0]) != 3 || got[0][2] != 4 || len(got[1]) != 2 || got[1][1] != 3 {
		t.Errorf("partitionShare of 5 among 2: %v", got)
	}
}

func TestBenchSummarize(t *testing.T) {
	if summarize(newHist()) != nil {
		t.Error("an empty histogram has a summary")
	}
	h := newHist()
	for i := 1; i <= 1000; i++ {
		record(h, time.Duration(i)*time.Microsecond)
	}
	record(h, -time.Second) // clamped to 1 ns
	record(h, 10*time.Hour) // clamped to histMax
	l := summarize(h)
	if l.Count != 1002 || l.Min != 1 || l.Max < 5*time.Minute-time.Second {
		t.Fatalf("summary %+v", *l)
	}
	// Three significant digits: within a few tenths of a percent (HDR
	// reports the top of a bucket, and the two clamped values shift ranks).
	near := func(got, want time.Duration) bool { return got >= want*995/1000 && got <= want*1005/1000 }
	if !near(l.P50, 500*time.Microsecond) || !near(l.P90, 900*time.Microsecond) || !near(l.P99, 990*time.Microsecond) {
		t.Errorf("percentiles %+v", *l)
	}
}

func TestBenchConfigErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Produce(ctx, Config{}); !errors.Is(err, ErrNoTopic) {
		t.Errorf("Produce without a topic: %v", err)
	}
	if _, err := E2E(ctx, Config{Topic: "t"}); !errors.Is(err, ErrNoRate) {
		t.Errorf("E2E without a rate: %v", err)
	}
	if _, err := E2E(ctx, Config{Topic: "t", Rate: 10, RecordSize: 8}); !errors.Is(err, ErrSmallValue) {
		t.Errorf("E2E with 8-byte records: %v", err)
	}
	if _, err := Fn(ctx, Config{Topic: "t", Rate: 10}); err == nil {
		t.Error("Fn without an output topic")
	}
}

// TestBenchAgainstNode runs each load against a real wisp process and
// checks the counts against the topic's offsets.
func TestBenchAgainstNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a wisp process")
	}
	n := testnode.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := Config{ClientOpts: []client.Opt{client.Servers(n.QUIC)}, Partitions: 4,
		TopicConfigs: map[string]string{"flush": "os"}}
	admin, err := client.New(ctx, base.ClientOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	end := func(topic string) int64 {
		t.Helper()
		ti, err := admin.DescribeTopic(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, p := range ti.Partitions {
			sum += p.HighWatermark
		}
		return sum
	}

	var progress []Progress
	cfg := base
	cfg.Topic, cfg.Count, cfg.Producers, cfg.RecordSize = "lg", 2001, 3, 10
	cfg.ProducerOpts = []client.Opt{client.RecordPartitioner(client.RoundRobinPartitioner())}
	cfg.Progress = func(p Progress) { progress = append(progress, p) }
	res, err := Produce(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 2001 || res.Bytes != 20010 || res.Errors != 0 || len(res.Clients) != 3 || res.Latency.Count != 2001 {
		t.Fatalf("produce: %+v", res)
	}
	if last := progress[len(progress)-1]; !last.Final || last.Done != 2001 || last.Total != 2001 {
		t.Fatalf("last progress %+v", last)
	}
	if got := end("lg"); got != 2001 {
		t.Fatalf("topic holds %d records, want 2001", got)
	}

	// Two consumers split the 4 partitions; round robin filled them all.
	cfg = base
	cfg.Topic, cfg.Consumers = "lg", 2
	res, err = Consume(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 2001 || res.Bytes != 20010 || res.Clients[0].Records == 0 || res.Clients[1].Records == 0 {
		t.Fatalf("consume: %+v", res)
	}
	// A group of two reads exactly Count.
	cfg.Group, cfg.Count = "lg-group", 500
	if res, err = Consume(ctx, cfg); err != nil || res.Records != 500 {
		t.Fatalf("consume in a group: %+v, %v", res, err)
	}
	// Five consumers for four partitions, without a group: refused.
	cfg = base
	cfg.Topic, cfg.Consumers = "lg", 5
	if _, err := Consume(ctx, cfg); err == nil {
		t.Fatal("5 group-less consumers for 4 partitions accepted")
	}

	cfg = base
	cfg.Topic, cfg.Count, cfg.Rate, cfg.Consumers, cfg.Producers = "lg-e2e", 300, 3000, 2, 2
	cfg.ProducerOpts = []client.Opt{client.Linger(0)}
	res, err = E2E(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 300 || res.Records != 300 || res.Lost != 0 || res.Latency.Count != 300 || len(res.Clients) != 4 {
		t.Fatalf("e2e: %+v", res)
	}
	if got := end("lg-e2e"); got != 300 {
		t.Fatalf("e2e topic holds %d records, want 300", got)
	}
}
