// Command worker is one instance of the "thumbnail service" of the
// messaging example. Run several: they share the partitions of "jobs" as
// the consumer group "workers", and when one dies the others take over its
// partitions.
//
//	go run ./examples/messaging/worker -name w1
//
// Each job's result goes to the topic "results", to the partition with the
// job's partition number, with the job's offset in a header; then the
// job's offset is committed to the group. A worker that crashes between
// the two leaves a result whose job is not committed yet: whoever gets the
// partition next reads the last result of that partition first and skips
// the jobs it already covers. Together with the idempotent producer (a
// retried write is never duplicated), every job gets exactly one result,
// crash or not. (At a rebalance the client takes a partition away only
// between two records, waiting up to half the session timeout for the job
// in hand: keep a job shorter than that, or two workers could hold one
// partition for a moment.)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/wispbus/wisp/client"
)

func main() {
	server := flag.String("server", envOr("WISP_SERVER", "127.0.0.1:7070"), "wisp server (QUIC, host:port)")
	name := flag.String("name", "worker", "this worker's name (printed with each job)")
	group := flag.String("group", "workers", "consumer group")
	in := flag.String("in", "jobs", "topic of jobs")
	out := flag.String("out", "results", "topic of results (at least as many partitions as the jobs topic)")
	session := flag.Duration("session", 6*time.Second, "group session timeout: how soon a dead worker's partitions move")
	work := flag.Duration("work", 0, "time one job takes")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix(*name + ": ")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Results go to the partition the worker names: the job's.
	cl, err := client.New(ctx, client.Servers(*server), client.RecordPartitioner(client.ManualPartitioner()))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	var mu sync.Mutex
	fresh := map[int32]bool{} // partitions assigned since their last check
	cons, err := cl.NewConsumer(ctx, client.Topics(*in), client.Group(*group),
		client.DisableAutoCommit(),
		client.SessionTimeout(*session), client.HeartbeatInterval(*session/6),
		client.OnAssigned(func(a map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range a[*in] {
				fresh[p] = true
			}
			fmt.Printf("%s assigned %s %v\n", *name, *in, a[*in])
		}),
		client.OnRevoked(func(r map[string][]int32) {
			fmt.Printf("%s revoked %s %v\n", *name, *in, r[*in])
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer cons.Close(context.Background())

	next := map[int32]int64{} // per partition: the first job without a result
	for rec, err := range cons.Records(ctx) {
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			log.Print(err)
			continue
		}
		mu.Lock()
		check := fresh[rec.Partition]
		delete(fresh, rec.Partition)
		mu.Unlock()
		if check {
			n, err := firstUndone(ctx, cl, *out, rec.Partition)
			if err != nil {
				log.Fatalf("reading the last result of %s/%d: %v", *out, rec.Partition, err)
			}
			next[rec.Partition] = n
		}
		if rec.Offset < next[rec.Partition] {
			fmt.Printf("%s skip %s (%s): its result is already written\n", *name, rec.Key, rec)
			if err := cons.CommitRecords(ctx, rec); err != nil {
				log.Print(err)
			}
			continue
		}

		time.Sleep(*work) // the actual work
		res := &client.Record{Topic: *out, Partition: rec.Partition, Key: rec.Key,
			Value:   fmt.Appendf(nil, `{"job":%q,"by":%q,"thumbnail":"thumbs/%s.jpg"}`, rec.Key, *name, rec.Key),
			Headers: []client.Header{{Key: "job.offset", Value: strconv.AppendInt(nil, rec.Offset, 10)}}}
		if err := cl.ProduceSync(ctx, res); err != nil {
			log.Fatalf("writing the result of %s: %v", rec.Key, err) // the job stays uncommitted: redone
		}
		if err := cons.CommitRecords(ctx, rec); err != nil && !errors.Is(err, context.Canceled) {
			log.Print(err) // the result covers it anyway
		}
		next[rec.Partition] = rec.Offset + 1
		fmt.Printf("%s done %s (%s)\n", *name, rec.Key, rec)
	}
}

// firstUndone returns the offset of the first job of partition p whose
// result is not in the results topic: one past the job offset of the
// partition's last result, or 0.
func firstUndone(ctx context.Context, cl *client.Client, results string, p int32) (int64, error) {
	ends, err := cl.ListOffsets(ctx, results, client.AtEnd())
	if err != nil {
		return 0, err
	}
	var end int64
	for _, e := range ends {
		if e.Partition == p {
			end = e.Offset
		}
	}
	if end == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := cl.NewConsumer(ctx, client.Partitions(results, p), client.StartOffset(client.At(end-1)))
	if err != nil {
		return 0, err
	}
	defer c.Close(context.Background())
	recs, err := c.Poll(ctx)
	if err != nil {
		return 0, err
	}
	for _, h := range recs[0].Headers {
		if h.Key == "job.offset" {
			n, err := strconv.ParseInt(string(h.Value), 10, 64)
			return n + 1, err
		}
	}
	return 0, fmt.Errorf("%s has no job.offset header", recs[0])
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
