package log_test

import (
	"context"
	"fmt"
	"os"

	"github.com/wispbus/wisp/bus/log"
	"github.com/wispbus/wisp/internal/batch"
)

func Example() {
	dir, _ := os.MkdirTemp("", "wisp-log-example")
	defer os.RemoveAll(dir)

	l, err := log.Open(dir, log.DefaultConfig(), nil)
	if err != nil {
		panic(err)
	}
	defer l.Close()

	// A producer's batch, appended as it is: the log only sets its base
	// offset and leader epoch.
	b, _ := batch.Build(batch.NoProducer, []batch.Record{
		{Timestamp: 1000, Key: []byte("user-1"), Value: []byte("signed up")},
		{Timestamp: 1001, Key: []byte("user-1"), Value: []byte("logged in")},
	})
	first, last, err := l.Append(b, 0)
	if err != nil {
		panic(err)
	}
	// Wait for the fsync (group-committed with concurrent appenders).
	if err := l.Sync(context.Background(), last+1); err != nil {
		panic(err)
	}
	fmt.Println("appended", first, "to", last, "durable up to", l.DurableOffset())

	data, _ := l.Read(0, 1<<20, l.DurableOffset())
	_ = batch.Each(data, func(_ batch.Header, b []byte) error {
		recs, _ := batch.Records(b)
		for _, r := range recs {
			fmt.Printf("%d %s %s\n", r.Offset, r.Key, r.Value)
		}
		return nil
	})
	// Output:
	// appended 0 to 1 durable up to 2
	// 0 user-1 signed up
	// 1 user-1 logged in
}
