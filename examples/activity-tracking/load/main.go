// Command load drives the activity-tracking site with simulated visitors:
// -n requests from -c concurrent clients, six page views, three searches
// and one click in every ten (request i is a search when i%10 is 6, 7 or
// 8, a click when it is 9), from 50 visitors.
//
//	go run ./examples/activity-tracking/load -n 100000 -c 32
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

var (
	pages   = []string{"home", "shoes", "hats", "socks", "bags", "sale", "about"}
	queries = []string{"red shoes", "wool hat", "socks", "gift", "sale"}
)

func main() {
	site := flag.String("site", "http://127.0.0.1:8000", "the site's URL")
	n := flag.Int("n", 10000, "requests")
	first := flag.Int("first", 0, "number of the first request (to continue a previous run's mix)")
	conc := flag.Int("c", 16, "concurrent clients")
	flag.Parse()
	log.SetFlags(0)

	tr := &http.Transport{MaxIdleConnsPerHost: *conc}
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var next, failed atomic.Int64
	next.Store(int64(*first))
	end := int64(*first + *n)
	var counts [3]atomic.Int64 // views, searches, clicks
	start := time.Now()
	var wg sync.WaitGroup
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= end {
					return
				}
				user := fmt.Sprintf("user-%02d", i%50)
				var u string
				kind := 0
				switch i % 10 {
				case 6, 7, 8:
					kind, u = 1, "/search?q="+url.QueryEscape(queries[i%int64(len(queries))])
				case 9:
					kind, u = 2, "/click?target=buy-"+pages[i%int64(len(pages))]
				default:
					u = "/p/" + pages[i%int64(len(pages))] + "?"
				}
				if kind != 0 {
					u += "&"
				}
				resp, err := cl.Get(*site + u + "user=" + user)
				if err != nil {
					failed.Add(1)
					log.Print(err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 300 {
					failed.Add(1)
					log.Printf("%s: %s", u, resp.Status)
					continue
				}
				counts[kind].Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	fmt.Printf("sent views=%d searches=%d clicks=%d failed=%d in %v (%.0f req/s)\n",
		counts[0].Load(), counts[1].Load(), counts[2].Load(), failed.Load(), el.Round(time.Millisecond), float64(*n)/el.Seconds())
	if failed.Load() > 0 {
		log.Fatalf("%d requests failed", failed.Load())
	}
}
