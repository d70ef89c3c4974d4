// Command export writes a range of a topic to NDJSON files, one per
// partition, for loading into a warehouse or for offline analysis:
//
//	go run ./examples/activity-tracking/export -topic searches -out ./warehouse \
//	    -from 2024-03-01T00:00:00Z -to 2024-03-02T00:00:00Z
//
// The range is [-from, -to) by record timestamp; -from finds its first
// offset through the broker's time index, and the export stops at -to or
// at the end each partition had when the export started (so it ends while
// producers keep writing). Each line is
//
//	{"partition":0,"offset":12,"timestamp":1709251200000,"key":"user-7","value":{...}}
//
// with the value inlined when it is JSON, else as a string.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/wispbus/wisp/client"
)

type line struct {
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Timestamp int64           `json:"timestamp"`
	Key       *string         `json:"key"`
	Value     json.RawMessage `json:"value"`
}

func main() {
	server := flag.String("server", envOr("WISP_SERVER", "127.0.0.1:7070"), "wisp server (QUIC, host:port)")
	topic := flag.String("topic", "", "topic to export")
	out := flag.String("out", ".", "directory for the files TOPIC-PARTITION.ndjson")
	from := flag.String("from", "", "first record time, RFC 3339 (default: the start of the log)")
	to := flag.String("to", "", "end time (exclusive), RFC 3339 (default: the end of the log)")
	flag.Parse()
	log.SetFlags(0)
	if *topic == "" {
		log.Fatal("export: -topic is required")
	}
	start, end := client.AtStart(), time.Time{}
	if *from != "" {
		t, err := time.Parse(time.RFC3339Nano, *from)
		if err != nil {
			log.Fatal(err)
		}
		start = client.AtTime(t)
	}
	if *to != "" {
		t, err := time.Parse(time.RFC3339Nano, *to)
		if err != nil {
			log.Fatal(err)
		}
		end = t
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cl, err := client.New(ctx, client.Servers(*server))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}

	// Per partition: [first, last) to export.
	firsts, err := cl.ListOffsets(ctx, *topic, start)
	if err != nil {
		log.Fatal(err)
	}
	lasts, err := cl.ListOffsets(ctx, *topic, client.AtEnd())
	if err != nil {
		log.Fatal(err)
	}
	endOf := map[int32]int64{}
	for _, l := range lasts {
		endOf[l.Partition] = l.Offset
	}
	total := 0
	for _, f := range firsts {
		p, first, last := f.Partition, f.Offset, endOf[f.Partition]
		if first < 0 { // no record at or after -from
			first = last
		}
		n, err := exportPartition(ctx, cl, *topic, p, first, last, end, filepath.Join(*out, fmt.Sprintf("%s-%d.ndjson", *topic, p)))
		if err != nil {
			log.Fatal(err)
		}
		total += n
	}
	fmt.Printf("exported %d records of %s to %s\n", total, *topic, *out)
}

func exportPartition(ctx context.Context, cl *client.Client, topic string, p int32, first, last int64, end time.Time, path string) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	n := 0
	if first < last {
		cons, err := cl.NewConsumer(ctx, client.Partitions(topic, p), client.StartOffset(client.At(first)))
		if err != nil {
			return 0, err
		}
		defer cons.Close(context.Background())
	read:
		for {
			recs, err := cons.Poll(ctx)
			if err != nil {
				return n, err
			}
			for _, r := range recs {
				if r.Offset >= last || (!end.IsZero() && !r.Timestamp.Before(end)) {
					break read
				}
				l := line{Partition: p, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli(), Value: r.Value}
				if r.Key != nil {
					k := string(r.Key)
					l.Key = &k
				}
				if r.Value == nil {
					l.Value = json.RawMessage("null")
				} else if !json.Valid(r.Value) {
					l.Value, _ = json.Marshal(string(r.Value))
				}
				if err := enc.Encode(l); err != nil {
					return n, err
				}
				n++
				if r.Offset == last-1 {
					break read
				}
			}
		}
	}
	if err := w.Flush(); err != nil {
		return n, err
	}
	return n, f.Close()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
