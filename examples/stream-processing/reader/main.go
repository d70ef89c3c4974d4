// Command reader is the client end of the stream-processing example: it
// reads the recommendations of the categories a user follows.
//
//	go run ./examples/stream-processing/reader -categories tech,science
//
// It follows the topics until Ctrl-C, or with -e stops at their end as it
// is at start.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/wispbus/wisp/client"
)

type article struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Category string   `json:"category"`
	Tags     []string `json:"tags"`
}

func main() {
	server := flag.String("server", envOr("WISP_SERVER", "127.0.0.1:7070"), "wisp server (QUIC, host:port)")
	cats := flag.String("categories", "tech,sports,science", "categories to read, comma-separated")
	exit := flag.Bool("e", false, "exit at the end of the topics as they are at start")
	asJSON := flag.Bool("json", false, `print {"topic":..,"article":{..}} lines`)
	flag.Parse()
	log.SetFlags(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cl, err := client.New(ctx, client.Servers(*server))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	var topics []string
	for _, c := range strings.Split(*cats, ",") {
		topics = append(topics, "recommendations."+strings.TrimSpace(c))
	}
	type tp struct {
		t string
		p int32
	}
	left := map[tp]int64{}
	if *exit {
		for _, t := range topics {
			ends, err := cl.ListOffsets(ctx, t, client.AtEnd())
			if err != nil {
				log.Fatal(err)
			}
			for _, e := range ends {
				if e.Offset > 0 {
					left[tp{t, e.Partition}] = e.Offset
				}
			}
		}
		if len(left) == 0 {
			return
		}
	}
	cons, err := cl.NewConsumer(ctx, client.Topics(topics...), client.StartOffset(client.AtStart()))
	if err != nil {
		log.Fatal(err)
	}
	defer cons.Close(context.Background())
	enc := json.NewEncoder(os.Stdout)
	for rec, err := range cons.Records(ctx) {
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			log.Print(err)
			continue
		}
		var a article
		if err := json.Unmarshal(rec.Value, &a); err != nil {
			log.Printf("%s: %v", rec, err)
		}
		if *asJSON {
			_ = enc.Encode(map[string]any{"topic": rec.Topic, "article": json.RawMessage(rec.Value)})
		} else {
			fmt.Printf("[%s] %s (%s)\n", a.Category, a.Title, strings.Join(a.Tags, ", "))
		}
		if end, ok := left[tp{rec.Topic, rec.Partition}]; ok && rec.Offset+1 >= end {
			delete(left, tp{rec.Topic, rec.Partition})
			if len(left) == 0 {
				break
			}
		}
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
