// Command kv is a replicated key-value store whose only storage is a
// compacted wisp topic: the topic is the commit log, every replica is a
// cache of it.
//
//	kv serve -addr 127.0.0.1:8091        a replica: rebuilds from the log, then follows it
//	kv put KEY=VALUE [KEY=VALUE ...]     a writer: appends changes
//	kv del KEY [KEY ...]                 a writer: appends tombstones (null values)
//
// A replica answers HTTP:
//
//	GET    /kv           every key and value, as a JSON object
//	GET    /kv/KEY       the value (404 when absent)
//	PUT    /kv/KEY       append KEY=body to the log; answers once this replica applied it
//	DELETE /kv/KEY       append a tombstone; answers once applied
//	GET    /status       {"keys":N,"records":M,"caught_up":true}
//
// The topic should have cleanup.policy=compact: the broker then keeps only
// the latest record of every key (and drops tombstones after
// delete.retention.ms), so a replica's rebuild reads about one record per
// live key however long the store has been running.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wispbus/wisp/client"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	server := fs.String("server", envOr("WISP_SERVER", "127.0.0.1:7070"), "wisp server (QUIC, host:port)")
	topic := fs.String("topic", "kv", "the compacted topic that is the store")
	addr := fs.String("addr", "127.0.0.1:8091", "serve: HTTP listen address")
	_ = fs.Parse(args)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cl, err := client.New(ctx, client.Servers(*server))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	switch cmd {
	case "put", "del":
		var recs []*client.Record
		for _, a := range fs.Args() {
			r := &client.Record{Topic: *topic, Key: []byte(a)} // nil Value: a tombstone
			if cmd == "put" {
				k, v, ok := strings.Cut(a, "=")
				if !ok {
					log.Fatalf("put: %q is not KEY=VALUE", a)
				}
				r.Key, r.Value = []byte(k), []byte(v)
			}
			recs = append(recs, r)
		}
		if err := cl.ProduceSync(ctx, recs...); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %d records appended\n", cmd, len(recs))
	case "serve":
		if err := serve(ctx, cl, *topic, *addr); err != nil {
			log.Fatal(err)
		}
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kv serve [-addr A] | kv put KEY=VALUE... | kv del KEY... (flags: -server, -topic)")
	os.Exit(2)
}

// replica is the state rebuilt from the log.
type replica struct {
	mu       sync.Mutex
	changed  *sync.Cond
	data     map[string]string
	applied  map[int32]int64 // per partition: the next offset to apply
	records  int
	caughtUp bool
}

func (r *replica) apply(rec *client.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec.Value == nil {
		delete(r.data, string(rec.Key))
	} else {
		r.data[string(rec.Key)] = string(rec.Value)
	}
	r.applied[rec.Partition] = rec.Offset + 1
	r.records++
	r.changed.Broadcast()
}

// waitApplied waits until the record at p/offset is applied.
func (r *replica) waitApplied(ctx context.Context, p int32, offset int64) error {
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.changed.Broadcast()
	})
	defer stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.applied[p] <= offset {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.changed.Wait()
	}
	return nil
}

func serve(ctx context.Context, cl *client.Client, topic, addr string) error {
	r := &replica{data: map[string]string{}, applied: map[int32]int64{}}
	r.changed = sync.NewCond(&r.mu)

	// Rebuild: read every partition from the start of the log up to the
	// end it has now, then keep following it.
	ends, err := cl.ListOffsets(ctx, topic, client.AtEnd())
	if err != nil {
		return err
	}
	target := map[int32]int64{}
	for _, e := range ends {
		target[e.Partition] = e.Offset
	}
	start := time.Now()
	cons, err := cl.NewConsumer(ctx, client.Topics(topic), client.StartOffset(client.AtStart()))
	if err != nil {
		return err
	}
	defer cons.Close(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for rec, err := range cons.Records(ctx) {
			if err != nil {
				if ctx.Err() == nil {
					log.Print(err)
				}
				continue
			}
			r.apply(rec)
		}
	}()
	for p, end := range target {
		if err := r.waitApplied(ctx, p, end-1); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.caughtUp = true
	fmt.Printf("replica ready: %d keys rebuilt from %d records in %v; serving on %s\n",
		len(r.data), r.records, time.Since(start).Round(time.Millisecond), addr)
	r.mu.Unlock()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /kv", func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		writeJSON(w, r.data)
	})
	mux.HandleFunc("GET /kv/{key}", func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		v, ok := r.data[req.PathValue("key")]
		r.mu.Unlock()
		if !ok {
			http.NotFound(w, req)
			return
		}
		io.WriteString(w, v)
	})
	write := func(w http.ResponseWriter, req *http.Request, value []byte) {
		rec := &client.Record{Topic: topic, Key: []byte(req.PathValue("key")), Value: value}
		if err := cl.ProduceSync(req.Context(), rec); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		// Read your writes: answer once this replica has applied it.
		if err := r.waitApplied(req.Context(), rec.Partition, rec.Offset); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	mux.HandleFunc("PUT /kv/{key}", func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		write(w, req, append([]byte{}, body...))
	})
	mux.HandleFunc("DELETE /kv/{key}", func(w http.ResponseWriter, req *http.Request) { write(w, req, nil) })
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		writeJSON(w, map[string]any{"keys": len(r.data), "records": r.records, "caught_up": r.caughtUp})
	})

	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
