package client

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The node restarts on the same address and data directory: the producer
// and a consumer reconnect on their own, and nothing is lost or repeated.
func TestNodeRestart(t *testing.T) {
	dir := t.TempDir()
	n := startNodeAt(t, dir, map[string]string{"flush": "always"})
	addr := n.addr
	ctx := testCtx(t, 40*time.Second)
	c := n.client(t, RetryBackoff(20*time.Millisecond))
	if _, err := c.CreateTopic(ctx, TopicSpec{Name: "r", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	send := func(from, to int) {
		var recs []*Record
		for i := from; i < to; i++ {
			recs = append(recs, &Record{Topic: "r", Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))})
		}
		if err := c.ProduceSync(ctx, recs...); err != nil {
			t.Fatal(err)
		}
	}
	send(0, 100)
	k, err := c.NewConsumer(ctx, Topics("r"))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(context.Background())
	seen := map[string]int{}
	read := func(want int) {
		for rec, err := range k.Records(ctx) {
			if err != nil {
				t.Logf("consumer: %v", err) // reconnecting
				continue
			}
			seen[string(rec.Value)]++
			if len(seen) == want {
				return
			}
		}
	}
	read(100)
	n.stop(t)
	n2 := startNodeAddr(t, dir, addr, map[string]string{"flush": "always"})
	_ = n2
	send(100, 200)
	read(200)
	for v, c := range seen {
		if c != 1 {
			t.Fatalf("record %s seen %d times", v, c)
		}
	}
}
