// Command aggregate reads the routed metric topics and aggregates the
// points per minute (of the points' own time) and metric: counters are
// summed, gauges get count, min, average and max. It prints the table every
// -every, and once more when it exits (Ctrl-C, -n or -e).
//
//	go run ./examples/metrics/aggregate -topics metrics.cpu,metrics.mem,metrics.http
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"maps"
	"math"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/wispbus/wisp/client"
)

type point struct {
	Host  string  `json:"host"`
	Name  string  `json:"name"`
	Kind  string  `json:"kind"`
	Value float64 `json:"value"`
	Time  int64   `json:"time"`
}

type key struct {
	Minute int64 // unix ms, truncated
	Name   string
}

// Agg is one row of the table.
type Agg struct {
	Minute string  `json:"minute"`
	Name   string  `json:"name"`
	Kind   string  `json:"kind"`
	Points int     `json:"points"`
	Sum    float64 `json:"sum"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Hosts  int     `json:"hosts"`
	hosts  map[string]bool
}

func main() {
	server := flag.String("server", envOr("WISP_SERVER", "127.0.0.1:7070"), "wisp server (QUIC, host:port)")
	topics := flag.String("topics", "metrics.cpu,metrics.mem,metrics.http", "topics to read, comma-separated")
	count := flag.Int("n", 0, "exit after this many points (0: no limit)")
	exit := flag.Bool("e", false, "exit at the end of the topics as they are at start")
	every := flag.Duration("every", 5*time.Second, "print the table this often")
	asJSON := flag.Bool("json", false, "print the final table as JSON lines")
	flag.Parse()
	log.SetFlags(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cl, err := client.New(ctx, client.Servers(*server))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	names := strings.Split(*topics, ",")

	type tp struct {
		t string
		p int32
	}
	left := map[tp]int64{}
	if *exit {
		for _, t := range names {
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
	}

	aggs := map[key]*Agg{}
	points, bad := 0, 0
	done := func() bool { return (*exit && len(left) == 0) || (*count > 0 && points >= *count) }
	if !done() {
		cons, err := cl.NewConsumer(ctx, client.Topics(names...), client.StartOffset(client.AtStart()))
		if err != nil {
			log.Fatal(err)
		}
		defer cons.Close(context.Background())
		last := time.Now()
		for rec, err := range cons.Records(ctx) {
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				log.Print(err)
				continue
			}
			if end, ok := left[tp{rec.Topic, rec.Partition}]; ok && rec.Offset+1 >= end {
				delete(left, tp{rec.Topic, rec.Partition})
			}
			var p point
			if err := json.Unmarshal(rec.Value, &p); err != nil || p.Name == "" {
				bad++ // the function lets none through; counted to prove it
			} else {
				add(aggs, p)
				points++
			}
			if done() {
				break
			}
			if time.Since(last) >= *every {
				last = time.Now()
				printTable(os.Stdout, aggs)
			}
		}
	}
	rows := sorted(aggs)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, a := range rows {
			_ = enc.Encode(a)
		}
	} else {
		printTable(os.Stdout, aggs)
	}
	fmt.Fprintf(os.Stderr, "aggregated %d points (%d unparseable)\n", points, bad)
}

func add(aggs map[key]*Agg, p point) {
	k := key{Minute: p.Time - p.Time%60000, Name: p.Name}
	a := aggs[k]
	if a == nil {
		a = &Agg{Minute: time.UnixMilli(k.Minute).UTC().Format("2006-01-02 15:04"), Name: p.Name, Kind: p.Kind,
			Min: math.Inf(1), Max: math.Inf(-1), hosts: map[string]bool{}}
		aggs[k] = a
	}
	a.Points++
	a.Sum += p.Value
	a.Min = min(a.Min, p.Value)
	a.Max = max(a.Max, p.Value)
	a.hosts[p.Host] = true
	a.Hosts = len(a.hosts)
}

func sorted(aggs map[key]*Agg) []*Agg {
	keys := slices.SortedFunc(maps.Keys(aggs), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.Minute, b.Minute), strings.Compare(a.Name, b.Name))
	})
	rows := make([]*Agg, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, aggs[k])
	}
	return rows
}

func printTable(w *os.File, aggs map[key]*Agg) {
	fmt.Fprintf(w, "%-16s  %-14s  %-7s  %6s  %5s  %10s  %8s  %8s  %8s\n", "minute", "metric", "kind", "points", "hosts", "sum", "min", "avg", "max")
	for _, a := range sorted(aggs) {
		if a.Kind == "counter" {
			fmt.Fprintf(w, "%-16s  %-14s  %-7s  %6d  %5d  %10.0f  %8s  %8s  %8s\n", a.Minute, a.Name, a.Kind, a.Points, a.Hosts, a.Sum, "", "", "")
			continue
		}
		fmt.Fprintf(w, "%-16s  %-14s  %-7s  %6d  %5d  %10s  %8.1f  %8.2f  %8.1f\n", a.Minute, a.Name, a.Kind, a.Points, a.Hosts, "", a.Min, a.Sum/float64(a.Points), a.Max)
	}
	fmt.Fprintln(w)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
