package client

import (
	"context"
	"testing"
	"time"
)

func TestProduceStressFlushAlways(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	n := startNode(t, map[string]string{"flush": "always"})
	c := n.client(t, RequiredAcks(AcksLeader))
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, TopicSpec{Name: "s", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	val := make([]byte, 100)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for range 10000 {
			c.Produce(ctx, &Record{Topic: "s", Value: val}, nil)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := c.Flush(fctx); err != nil {
		t.Fatalf("flush: %v\n%s\n%s", err, c.prod.debugState(), allStacks())
	}
}
