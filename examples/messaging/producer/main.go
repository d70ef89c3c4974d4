// Command producer is the "orders service" of the messaging example: it
// hands jobs to the workers through the topic "jobs" and moves on. It never
// waits for a worker; the bus keeps the jobs durable until one takes them.
//
//	go run ./examples/messaging/producer -n 1000 -rate 200
//
// The client's producer is idempotent by default (a producer id and a
// sequence number per partition), so a batch retried after a dropped
// connection is never written twice.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wispbus/wisp/client"
)

func main() {
	server := flag.String("server", envOr("WISP_SERVER", "127.0.0.1:7070"), "wisp server (QUIC, host:port)")
	topic := flag.String("topic", "jobs", "topic to hand the jobs to")
	n := flag.Int("n", 1000, "number of jobs")
	rate := flag.Int("rate", 200, "jobs per second (0: as fast as possible)")
	flag.Parse()
	log.SetFlags(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cl, err := client.New(ctx, client.Servers(*server))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	var failed atomic.Int64
	var tick <-chan time.Time
	if *rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(*rate))
		defer t.Stop()
		tick = t.C
	}
	sent := 0
	for i := range *n {
		if tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		id := fmt.Sprintf("job-%05d", i)
		body, _ := json.Marshal(map[string]any{"id": id, "task": "thumbnail", "image": fmt.Sprintf("img/%d.jpg", i)})
		// The key spreads jobs over the partitions; one job's records
		// would stay in order on one partition.
		cl.Produce(ctx, &client.Record{Topic: *topic, Key: []byte(id), Value: body}, func(r *client.Record, err error) {
			if err != nil {
				failed.Add(1)
				log.Printf("job %s: %v", r.Key, err)
			}
		})
		sent++
	}
	// Flush waits until every job is acknowledged (acks=all by default).
	if err := cl.Flush(context.Background()); err != nil {
		log.Fatal(err)
	}
	if failed.Load() > 0 {
		log.Fatalf("%d of %d jobs failed", failed.Load(), sent)
	}
	fmt.Printf("produced %d jobs to %s\n", sent, *topic)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
