package messaging_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/examples/internal/extest"
)

// TestScenario runs the README's scenario: two workers share "jobs" as a
// group; the producer hands out jobs; worker w1 is SIGKILLed mid-stream;
// w2 takes over its partitions. Every job must have exactly one result.
func TestScenario(t *testing.T) {
	jobs := 600
	if testing.Short() {
		jobs = 300
	}
	n := extest.Node(t)
	bins := extest.Build(t, "examples/messaging/producer", "examples/messaging/worker")
	extest.Wisp(t, n, "", "topic", "create", "jobs", "-p", "4")
	extest.Wisp(t, n, "", "topic", "create", "results", "-p", "4")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Servers(n.QUIC))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	w1 := extest.Start(t, n, bins["worker"], "-name", "w1")
	w2 := extest.Start(t, n, bins["worker"], "-name", "w2")
	// Both members hold partitions before any job is produced.
	extest.CheckFor(t, 30*time.Second, func() error {
		d, err := cl.DescribeGroup(ctx, "workers")
		if err != nil {
			return err
		}
		if d.State != "Stable" || len(d.Members) != 2 {
			return fmt.Errorf("group %s with %d members", d.State, len(d.Members))
		}
		for _, m := range d.Members {
			if len(m.Assigned["jobs"]) == 0 {
				return fmt.Errorf("member %s has no partition", m.ClientID)
			}
		}
		return nil
	})

	prod := extest.Start(t, n, bins["producer"], "-n", fmt.Sprint(jobs), "-rate", "300")
	extest.CheckFor(t, 60*time.Second, func() error {
		if got := extest.Lines(w1.Output(), "w1 done"); got < 20 {
			return fmt.Errorf("w1 has done %d jobs", got)
		}
		return nil
	})
	w1.Kill() // mid-stream: jobs are still being produced and processed
	killedAfter := extest.Lines(w1.Output(), "w1 done")
	prod.Wait(t, time.Minute)

	// w2 takes over once w1's session times out, and works off the lag.
	extest.CheckFor(t, 60*time.Second, func() error {
		offs, err := cl.GroupOffsets(ctx, "workers", "jobs")
		if err != nil {
			return err
		}
		var committed int64
		for _, o := range offs {
			if o.Lag != 0 {
				return fmt.Errorf("partition %d: lag %d", o.Partition, o.Lag)
			}
			committed += o.Committed
		}
		if committed != int64(jobs) {
			return fmt.Errorf("committed %d of %d", committed, jobs)
		}
		return nil
	})

	// Nothing lost or duplicated: exactly one job record and one result
	// per job.
	if got := endOffsets(t, ctx, cl, "jobs"); got != int64(jobs) {
		t.Errorf("jobs topic holds %d records, want %d", got, jobs)
	}
	results := endOffsets(t, ctx, cl, "results")
	if results != int64(jobs) {
		t.Errorf("results topic holds %d records, want %d (one per job)", results, jobs)
	}
	by := map[string]int{}
	seen := map[string]int{}
	cons, err := cl.NewConsumer(ctx, client.Topics("results"))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close(context.Background())
	for len(seen) < int(results) && len(seen) < jobs {
		recs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			seen[string(r.Key)]++
			switch {
			case bytes.Contains(r.Value, []byte(`"by":"w1"`)):
				by["w1"]++
			case bytes.Contains(r.Value, []byte(`"by":"w2"`)):
				by["w2"]++
			}
		}
	}
	for i := range jobs {
		if id := fmt.Sprintf("job-%05d", i); seen[id] != 1 {
			t.Errorf("%s has %d results", id, seen[id])
		}
	}
	if by["w1"] < killedAfter || by["w2"] == 0 || by["w1"]+by["w2"] != jobs {
		t.Errorf("results by worker %v (w1 printed %d before the kill)", by, killedAfter)
	}
	// w2 was given w1's partitions: it is the group's only member, with
	// all four.
	d, err := cl.DescribeGroup(ctx, "workers")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Members) != 1 || len(d.Members[0].Assigned["jobs"]) != 4 {
		t.Errorf("group after the kill: %+v", d.Members)
	}
	t.Logf("%d jobs; results by w1 %d (killed after printing %d), by w2 %d", jobs, by["w1"], killedAfter, by["w2"])
	w2.Stop(t)
}

// endOffsets is the sum of the topic's partitions' end offsets.
func endOffsets(t *testing.T, ctx context.Context, cl *client.Client, topic string) int64 {
	t.Helper()
	offs, err := cl.ListOffsets(ctx, topic, client.AtEnd())
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, o := range offs {
		sum += o.Offset
	}
	return sum
}
