package client

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Three members share six partitions; records keep coming while one
// member leaves. Every record is consumed (none lost across the
// rebalance), each partition in offset order within a member.
func TestGroupThreeMembersOneLeaves(t *testing.T) {
	n := startNode(t, map[string]string{"flush": "os"})
	ctx := testCtx(t, 50*time.Second)
	admin := n.client(t)
	const topic, group, perPhase = "orders", "billing", 3000
	if _, err := admin.CreateTopic(ctx, TopicSpec{Name: topic, Partitions: 6}); err != nil {
		t.Fatal(err)
	}
	produce := func(from, to int) {
		var recs []*Record
		for i := from; i < to; i++ {
			recs = append(recs, &Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))})
		}
		if err := admin.ProduceSync(ctx, recs...); err != nil {
			t.Error(err)
		}
	}
	produce(0, perPhase)

	var mu sync.Mutex
	seen := map[string]int{}
	byMember := map[int]int{}
	var wg sync.WaitGroup
	consumers := make([]*Consumer, 3)
	cctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	for i := range consumers {
		c := n.client(t, ClientID(fmt.Sprintf("member-%d", i)))
		k, err := c.NewConsumer(ctx, Topics(topic), Group(group), HeartbeatInterval(100*time.Millisecond),
			SessionTimeout(6*time.Second), AutoCommitInterval(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		consumers[i] = k
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := map[int32]int64{}
			for rec, err := range k.Records(cctx) {
				if err != nil {
					if cctx.Err() == nil {
						t.Errorf("member %d: %v", i, err)
					}
					return
				}
				if o, ok := last[rec.Partition]; ok && rec.Offset <= o {
					t.Errorf("member %d: %s after offset %d", i, rec, o)
				}
				last[rec.Partition] = rec.Offset
				mu.Lock()
				seen[string(rec.Value)]++
				byMember[i]++
				mu.Unlock()
			}
		}()
	}
	// Wait until all three hold partitions.
	checkFor(t, 20*time.Second, "three members with partitions", func() bool {
		total := 0
		for _, k := range consumers {
			a := k.Assignment()
			if len(a[topic]) == 0 {
				return false
			}
			total += len(a[topic])
		}
		return total == 6
	})
	produce(perPhase, 2*perPhase)
	checkFor(t, 20*time.Second, "some records consumed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= perPhase
	})
	// Member 2 leaves mid-stream: Close commits what it processed and
	// leaves the group; the other two take its partitions over.
	if err := consumers[2].Close(ctx); err != nil {
		t.Fatal(err)
	}
	go produce(2*perPhase, 3*perPhase)
	checkFor(t, 30*time.Second, "every record consumed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 3*perPhase
	})
	stopAll()
	wg.Wait()
	for _, k := range consumers[:2] {
		if err := k.Close(ctx); err != nil {
			t.Error(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for v, c := range seen {
		if c > 1 {
			dups += c - 1
			if dups < 5 {
				t.Logf("record %s consumed %d times", v, c)
			}
		}
	}
	t.Logf("per member: %v; duplicates: %d", byMember, dups)
	for i := range 3 * perPhase {
		if seen[strconv.Itoa(i)] == 0 {
			t.Fatalf("record %d never consumed", i)
		}
	}
	// The group's committed offsets cover everything.
	offs, err := admin.GroupOffsets(ctx, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range offs {
		if o.Lag != 0 {
			t.Errorf("partition %d: lag %d after the group consumed everything (%+v)", o.Partition, o.Lag, o)
		}
	}
	d, err := admin.DescribeGroup(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if d.ProtocolType != "consumer" || len(d.Members) != 0 {
		t.Errorf("group after everyone left: %+v", d)
	}
}

// A member subscribed to a topic that does not exist yet gets its
// partitions once the topic is created, and more when it grows.
func TestGroupPicksUpNewPartitions(t *testing.T) {
	old := metadataCheck
	metadataCheck = 100 * time.Millisecond
	defer func() { metadataCheck = old }()
	n := startNode(t, map[string]string{"flush": "os"})
	ctx := testCtx(t, 30*time.Second)
	c := n.client(t)
	k, err := c.NewConsumer(ctx, Topics("later"), Group("g"), HeartbeatInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(context.Background())
	time.Sleep(200 * time.Millisecond)
	if _, err := c.CreateTopic(ctx, TopicSpec{Name: "later", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range k.Records(ctx) { // the app's goroutine: runs revocations
		}
	}()
	checkFor(t, 10*time.Second, "two partitions assigned", func() bool { return len(k.Assignment()["later"]) == 2 })
	if err := c.AddPartitions(ctx, "later", 5); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, "five partitions assigned", func() bool { return len(k.Assignment()["later"]) == 5 })
}

// A static member (InstanceID) that restarts within its session timeout
// takes its partitions back, resuming from its commits.
func TestStaticMemberRestart(t *testing.T) {
	n := startNode(t, map[string]string{"flush": "os"})
	ctx := testCtx(t, 30*time.Second)
	c := n.client(t)
	if _, err := c.CreateTopic(ctx, TopicSpec{Name: "st", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	var recs []*Record
	for i := range 20 {
		recs = append(recs, &Record{Topic: "st", Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))})
	}
	if err := c.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	consume := func(want int) map[string]bool {
		k, err := c.NewConsumer(ctx, Topics("st"), Group("static"), InstanceID("worker-1"), HeartbeatInterval(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for rec, err := range k.Records(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			got[string(rec.Value)] = true
			if len(got) == want {
				break
			}
		}
		if err := k.Close(ctx); err != nil {
			t.Fatal(err)
		}
		return got
	}
	consume(20)
	d, err := c.DescribeGroup(ctx, "static")
	if err != nil || len(d.Members) != 1 || d.Members[0].InstanceID != "worker-1" {
		t.Fatalf("static member left on close: %+v %v", d, err)
	}
	if err := c.ProduceSync(ctx, &Record{Topic: "st", Key: []byte("x"), Value: []byte("late")}); err != nil {
		t.Fatal(err)
	}
	if got := consume(1); !got["late"] {
		t.Fatalf("after restart got %v, want only the new record", got)
	}
}
