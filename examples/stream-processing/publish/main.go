// Command publish writes articles, one JSON object per line of stdin, to
// the topic "articles", keyed by their "id".
//
//	go run ./examples/stream-processing/publish < examples/stream-processing/articles.ndjson
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
	"strings"
	"syscall"

	"github.com/wispbus/wisp/client"
)

func main() {
	server := flag.String("server", envOr("WISP_SERVER", "127.0.0.1:7070"), "wisp server (QUIC, host:port)")
	topic := flag.String("topic", "articles", "topic to publish to")
	flag.Parse()
	log.SetFlags(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cl, err := client.New(ctx, client.Servers(*server))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	var recs []*client.Record
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var a struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil || a.ID == "" {
			log.Fatalf("line %d: not an article with an id: %s", len(recs)+1, sc.Text())
		}
		recs = append(recs, &client.Record{Topic: *topic, Key: []byte(a.ID), Value: append([]byte{}, sc.Bytes()...)})
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, recs...); err != nil {
		// One error per failed record, joined: say how many and the first.
		msgs := strings.Split(err.Error(), "\n")
		log.Fatalf("%d of %d articles failed: %s", len(msgs), len(recs), msgs[0])
	}
	fmt.Printf("published %d articles to %s\n", len(recs), *topic)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
