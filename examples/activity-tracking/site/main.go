// Command site is a tiny shop website that tracks its visitors: every
// page view, search and click is published to wisp through the HTTP
// produce endpoint, to one topic per event type (page-views, searches,
// clicks), keyed by the visitor.
//
//	go run ./examples/activity-tracking/site -addr 127.0.0.1:8000 -wisp http://127.0.0.1:8080
//
// Pages: /  /p/{page}  /search?q=...  /click?target=...  and /stats (what
// was published). The visitor is ?user=..., else a "uid" cookie the site
// sets.
//
// Tracking must never slow the site down: a request only queues its event;
// a publisher goroutine sends the queued events of each topic together,
// one POST per topic every 100ms (or per 500 events), so the bus sees a
// few large requests instead of one per page view.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Event is what the site tracks.
type Event struct {
	Type   string `json:"type"`
	User   string `json:"user"`
	Page   string `json:"page,omitempty"`
	Query  string `json:"query,omitempty"`
	Target string `json:"target,omitempty"`
	Time   int64  `json:"time"` // ms since the epoch
}

var topics = map[string]string{"view": "page-views", "search": "searches", "click": "clicks"}

// publisher batches events per topic and posts them to the HTTP endpoint.
type publisher struct {
	wisp   string
	queue  chan Event
	mu     sync.Mutex
	stats  map[string]int // published per topic, and "failed"
	client *http.Client
}

func (p *publisher) track(e Event) {
	p.queue <- e // a full queue (10k events) pushes back on requests
}

// run sends batches until queue is closed and drained.
func (p *publisher) run() {
	pending := map[string][]Event{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	flush := func(topic string) {
		if len(pending[topic]) > 0 {
			p.post(topic, pending[topic])
			pending[topic] = nil
		}
	}
	for {
		select {
		case e, ok := <-p.queue:
			if !ok {
				for t := range pending {
					flush(t)
				}
				return
			}
			t := topics[e.Type]
			pending[t] = append(pending[t], e)
			if len(pending[t]) >= 500 {
				flush(t)
			}
		case <-tick.C:
			for t := range pending {
				flush(t)
			}
		}
	}
}

// post produces events to topic in one request, retrying a few times on
// errors the endpoint calls retryable (5xx) or a failed connection.
func (p *publisher) post(topic string, events []Event) {
	type rec struct {
		Key       string `json:"key"`
		Value     Event  `json:"value"`
		Timestamp int64  `json:"timestamp"`
	}
	body := struct {
		Records []rec `json:"records"`
	}{}
	for _, e := range events {
		body.Records = append(body.Records, rec{Key: e.User, Value: e, Timestamp: e.Time})
	}
	b, _ := json.Marshal(body)
	var err error
	for attempt := range 4 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
		var resp *http.Response
		resp, err = p.client.Post(p.wisp+"/v1/topics/"+topic+"/records", "application/json", bytes.NewReader(b))
		if err != nil {
			continue
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			p.count(topic, len(events))
			return
		}
		err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
		if resp.StatusCode < 500 {
			break // a bad request stays bad
		}
	}
	log.Printf("publishing %d events to %s: %v", len(events), topic, err)
	p.count("failed", len(events))
}

func (p *publisher) count(k string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats[k] += n
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "listen address of the site")
	wisp := flag.String("wisp", envOr("WISP_HTTP_URL", "http://127.0.0.1:8080"), "wisp HTTP endpoint")
	flag.Parse()
	log.SetFlags(0)

	pub := &publisher{wisp: *wisp, queue: make(chan Event, 10000), stats: map[string]int{},
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}}
	done := make(chan struct{})
	go func() { pub.run(); close(done) }()

	user := func(w http.ResponseWriter, r *http.Request) string {
		if u := r.URL.Query().Get("user"); u != "" {
			return u
		}
		if c, err := r.Cookie("uid"); err == nil {
			return c.Value
		}
		u := fmt.Sprintf("anon-%08x", rand.Uint32())
		http.SetCookie(w, &http.Cookie{Name: "uid", Value: u, Path: "/"})
		return u
	}
	now := func() int64 { return time.Now().UnixMilli() }
	mux := http.NewServeMux()
	page := func(w http.ResponseWriter, r *http.Request, name string) {
		pub.track(Event{Type: "view", User: user(w, r), Page: name, Time: now()})
		fmt.Fprintf(w, "<h1>%s</h1><form action=/search><input name=q></form><a href=/click?target=buy-%s>buy</a>\n",
			html.EscapeString(name), html.EscapeString(name))
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { page(w, r, "home") })
	mux.HandleFunc("GET /p/{page}", func(w http.ResponseWriter, r *http.Request) { page(w, r, r.PathValue("page")) })
	mux.HandleFunc("GET /search", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("q")
		pub.track(Event{Type: "search", User: user(w, r), Query: q, Time: now()})
		fmt.Fprintf(w, "<p>no results for %s (this shop sells nothing)</p>\n", html.EscapeString(q))
	})
	mux.HandleFunc("GET /click", func(w http.ResponseWriter, r *http.Request) {
		pub.track(Event{Type: "click", User: user(w, r), Target: r.URL.Query().Get("target"), Time: now()})
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		pub.mu.Lock()
		defer pub.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(pub.stats)
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Printf("site on http://%s, publishing to %s\n", l.Addr(), *wisp)
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	close(pub.queue) // every handler has returned: deliver what is queued
	<-done
	fmt.Printf("published %v\n", pub.stats)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
