package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/internal/testnode"
)

// TestGroupMemberLeavesMidStream: three client consumers of one group
// share six partitions while records are produced; one member closes in
// the middle. Every record is consumed (at least once); duplicates can
// only come from the rebalance (records processed but not yet committed
// when partitions moved) and are counted, not failed.
func TestGroupMemberLeavesMidStream(t *testing.T) {
	n := testnode.Start(t)
	pc := newClient(t, n, client.Linger(2*time.Millisecond))
	const topic, group, parts, total = "shared", "trio", 6, 3000
	createTopic(t, pc, topic, parts)

	type pos struct {
		p int32
		o int64
	}
	var (
		mu       sync.Mutex
		seen     = map[string]int{}   // value -> times consumed
		where    = map[string]pos{}   // value -> where it was read
		byMember = [3]map[int32]int{} // partition -> records, per member
	)
	for i := range byMember {
		byMember[i] = map[int32]int{}
	}
	distinct := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	consumers := make([]*client.Consumer, 3)
	stops := make([]context.CancelFunc, 3)
	for i := range consumers {
		c := newClient(t, n)
		cons, err := c.NewConsumer(ctx, client.Topics(topic), client.Group(group),
			client.HeartbeatInterval(100*time.Millisecond), client.SessionTimeout(6*time.Second),
			client.AutoCommitInterval(100*time.Millisecond), client.RebalanceTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		consumers[i] = cons
		cctx, stop := context.WithCancel(ctx)
		stops[i] = stop
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rec, err := range cons.Records(cctx) {
				if err != nil {
					if cctx.Err() == nil && !errors.Is(err, client.ErrClosed) {
						t.Logf("member %d: %v", i, err)
					}
					continue
				}
				v := string(rec.Value)
				mu.Lock()
				if prev, ok := where[v]; ok && prev != (pos{rec.Partition, rec.Offset}) {
					t.Errorf("value %s at %d/%d and at %d/%d", v, prev.p, prev.o, rec.Partition, rec.Offset)
				}
				where[v] = pos{rec.Partition, rec.Offset}
				seen[v]++
				byMember[i][rec.Partition]++
				mu.Unlock()
			}
		}()
	}
	// Wait until the three share the partitions.
	checkFor(t, 20*time.Second, func() error {
		got := 0
		for _, cons := range consumers {
			a := cons.Assignment()[topic]
			if len(a) == 0 {
				return fmt.Errorf("a member has no partitions yet")
			}
			got += len(a)
		}
		if got != parts {
			return fmt.Errorf("%d partitions assigned", got)
		}
		return nil
	})

	// Produce in the background, at a pace that spreads the records over
	// the leave and the rebalance.
	var produced atomic.Int64
	var prodErr atomic.Value
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		for i := range total {
			rec := &client.Record{Topic: topic, Key: []byte(strconv.Itoa(i % 97)), Value: []byte(strconv.Itoa(i))}
			pc.Produce(ctx, rec, func(_ *client.Record, err error) {
				if err != nil {
					prodErr.Store(err)
				}
				produced.Add(1)
			})
			if i%100 == 99 {
				time.Sleep(15 * time.Millisecond)
			}
		}
		fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
		defer fcancel()
		if err := pc.Flush(fctx); err != nil {
			prodErr.Store(err)
		}
	}()

	// Once a third is consumed, member 1 leaves.
	checkFor(t, 20*time.Second, func() error {
		if d := distinct(); d < total/3 {
			return fmt.Errorf("%d records consumed", d)
		}
		return nil
	})
	stops[1]()
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := consumers[1].Close(closeCtx); err != nil {
		t.Errorf("close member 1: %v", err)
	}
	closeCancel()
	atLeave := distinct()
	t.Logf("member 1 left after %d distinct records", atLeave)

	<-prodDone
	if err, _ := prodErr.Load().(error); err != nil {
		t.Fatalf("produce: %v", err)
	}
	checkFor(t, 30*time.Second, func() error {
		if d := distinct(); d < total {
			return fmt.Errorf("%d of %d records consumed; the two members have %v and %v",
				d, total, consumers[0].Assignment(), consumers[2].Assignment())
		}
		return nil
	})
	// The partitions of the member that left moved to the others.
	checkFor(t, 10*time.Second, func() error {
		if a, b := len(consumers[0].Assignment()[topic]), len(consumers[2].Assignment()[topic]); a+b != parts {
			return fmt.Errorf("remaining members own %d+%d partitions", a, b)
		}
		return nil
	})
	for _, i := range []int{0, 2} {
		stops[i]()
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := consumers[i].Close(cctx); err != nil {
			t.Errorf("close member %d: %v", i, err)
		}
		ccancel()
	}
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for i := range total {
		switch c := seen[strconv.Itoa(i)]; {
		case c == 0:
			t.Errorf("record %d never consumed", i)
		case c > 1:
			dups += c - 1
		}
	}
	t.Logf("%d records, %d duplicates across the rebalance; per member and partition: %v", total, dups, byMember)
	if len(byMember[1]) == 0 {
		t.Errorf("member 1 consumed nothing before leaving")
	}

	// Everything consumed is committed: the group has no lag.
	g := describeGroup(t, n, group)
	if g.TotalLag != 0 {
		t.Errorf("lag after all members closed: %+v", g)
	}
}
