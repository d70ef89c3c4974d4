package client

import (
	"runtime"
	"testing"
	"time"
)

// Closing consumers, the client and the node leaves no goroutine behind.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()
	func() {
		dir := t.TempDir()
		n := startNodeAt(t, dir, map[string]string{"flush": "os"})
		defer n.stop(t)
		ctx := testCtx(t, 20*time.Second)
		c, err := New(ctx, Servers(n.addr), Logger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ProduceSync(ctx, &Record{Topic: "leak", Value: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		k, err := c.NewConsumer(ctx, Topics("leak"), Group("leakers"), HeartbeatInterval(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range k.Records(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		c.Produce(ctx, &Record{Topic: "leak", Value: []byte("y")}, nil)
		if err := k.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
