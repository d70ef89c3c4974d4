// Command merge reads the aggregated log topic and writes one merged
// stream, "host | line" per line: every source's lines in the order the
// source shipped them, sources interleaved as they arrived.
//
//	go run ./examples/log-aggregation/merge -e -out all.log
//
// Without -e it keeps following the topic until Ctrl-C.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/wispbus/wisp/client"
)

func main() {
	server := flag.String("server", envOr("WISP_SERVER", "127.0.0.1:7070"), "wisp server (QUIC, host:port)")
	topic := flag.String("topic", "logs", "the aggregated log topic")
	out := flag.String("out", "-", "output file (- is stdout)")
	exit := flag.Bool("e", false, "exit at the end of the log as it is at start")
	count := flag.Int("n", 0, "exit after this many lines (0: no limit)")
	flag.Parse()
	log.SetFlags(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cl, err := client.New(ctx, client.Servers(*server))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	w := os.Stdout
	if *out != "-" {
		if w, err = os.Create(*out); err != nil {
			log.Fatal(err)
		}
	}
	bw := bufio.NewWriter(w)

	// The end of each partition now, for -e.
	left := map[int32]int64{}
	if *exit {
		ends, err := cl.ListOffsets(ctx, *topic, client.AtEnd())
		if err != nil {
			log.Fatal(err)
		}
		for _, e := range ends {
			if e.Offset > 0 {
				left[e.Partition] = e.Offset
			}
		}
	}
	written := 0
	done := func() bool {
		return (*exit && len(left) == 0) || (*count > 0 && written >= *count)
	}
	if !done() {
		cons, err := cl.NewConsumer(ctx, client.Topics(*topic), client.StartOffset(client.AtStart()))
		if err != nil {
			log.Fatal(err)
		}
		defer cons.Close(context.Background())
		for rec, err := range cons.Records(ctx) {
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				log.Print(err)
				continue
			}
			fmt.Fprintf(bw, "%s | %s\n", rec.Key, rec.Value)
			written++
			if end, ok := left[rec.Partition]; ok && rec.Offset+1 >= end {
				delete(left, rec.Partition)
			}
			if done() {
				break
			}
			if !*exit && *count == 0 {
				bw.Flush() // following: show each line as it comes
			}
		}
	}
	if err := bw.Flush(); err != nil {
		log.Fatal(err)
	}
	if w != os.Stdout {
		if err := w.Close(); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Fprintf(os.Stderr, "merged %d lines\n", written)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
