// Command servers simulates a fleet of servers pushing metrics to the
// topic "metrics-raw": -n servers (one goroutine and one connection each),
// each sending -points rounds, one every -interval of simulated time from
// -start, of three points:
//
//	cpu.usage      gauge    (7·s + 3·k) mod 100
//	mem.free       gauge    1000 + 10·s + k
//	http.requests  counter  s + k + 1          (requests since the last round)
//
// for server s (host "srv-NN") and round k. To exercise the function's
// validation, the j-th point of server s (j = 3k + 0, 1, 2 in the order
// above) is replaced by a malformed one when (s + j) mod -bad-every is
// -bad-every − 1.
//
//	go run ./examples/metrics/servers -n 50 -points 60
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wispbus/wisp/client"
)

// malformed points, in turn.
var malformed = []string{
	`not json at all`,
	`{"name":"cpu.usage","kind":"gauge","value":1,"time":0}`,                // no host
	`{"host":"x","name":"cpu.usage","kind":"histogram","value":1,"time":0}`, // unknown kind
	`{"host":"x","name":"cpu.usage","kind":"gauge","value":"high","time":0}`,
	`{"host":"x","name":"http.requests","kind":"counter","value":-5,"time":0}`,
	`{"host":"x","name":"CPU Usage!","kind":"gauge","value":1,"time":0}`,
}

func main() {
	server := flag.String("server", envOr("WISP_SERVER", "127.0.0.1:7070"), "wisp server (QUIC, host:port)")
	topic := flag.String("topic", "metrics-raw", "topic to push to")
	n := flag.Int("n", 20, "servers")
	points := flag.Int("points", 30, "rounds per server")
	start := flag.String("start", "2024-03-01T10:00:00Z", "simulated time of the first round (RFC 3339)")
	interval := flag.Duration("interval", 10*time.Second, "simulated time between rounds")
	badEvery := flag.Int("bad-every", 25, "one point in this many is malformed (0: none)")
	flag.Parse()
	log.SetFlags(0)
	t0, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var sent, bad, failed atomic.Int64
	var wg sync.WaitGroup
	for s := range *n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := client.New(ctx, client.Servers(*server), client.Linger(20*time.Millisecond))
			if err != nil {
				log.Print(err)
				failed.Add(int64(*points * 3))
				return
			}
			defer cl.Close()
			host := fmt.Sprintf("srv-%02d", s)
			for k := range *points {
				ts := t0.Add(time.Duration(k) * *interval).UnixMilli()
				vals := []struct {
					name, kind string
					v          int
				}{
					{"cpu.usage", "gauge", (7*s + 3*k) % 100},
					{"mem.free", "gauge", 1000 + 10*s + k},
					{"http.requests", "counter", s + k + 1},
				}
				for m, p := range vals {
					j := 3*k + m
					v := fmt.Sprintf(`{"host":%q,"name":%q,"kind":%q,"value":%d,"time":%d}`, host, p.name, p.kind, p.v, ts)
					if *badEvery > 0 && (s+j)%*badEvery == *badEvery-1 {
						v = malformed[(s+j)%len(malformed)]
						bad.Add(1)
					}
					cl.Produce(ctx, &client.Record{Topic: *topic, Key: []byte(host), Value: []byte(v)}, func(r *client.Record, err error) {
						if err != nil {
							failed.Add(1)
							log.Print(err)
						}
					})
					sent.Add(1)
				}
			}
			if err := cl.Flush(ctx); err != nil {
				log.Print(err)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("pushed %d points from %d servers (%d malformed, %d failed)\n", sent.Load(), *n, bad.Load(), failed.Load())
	if failed.Load() > 0 {
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
