// Command ship tails a log file into wisp, one record per line, keyed by
// the source host, in compressed batches: run one per file (or per host).
//
//	go run ./examples/log-aggregation/ship -host web-1 -file /var/log/nginx/access.log
//
// Keying by host puts every line of a host on one partition, in the order
// shipped: a consumer sees each source's lines in order, however many
// sources share the topic. It follows the file (like tail -F without the
// rotation handling) until Ctrl-C, then delivers what it read and exits.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wispbus/wisp/client"
)

func main() {
	server := flag.String("server", envOr("WISP_SERVER", "127.0.0.1:7070"), "wisp server (QUIC, host:port)")
	topic := flag.String("topic", "logs", "topic to ship to")
	host := flag.String("host", "", "source host: the records' key (default: this machine's hostname)")
	file := flag.String("file", "", "log file to tail")
	codec := flag.String("z", "zstd", "compression: none, gzip, snappy, lz4 or zstd")
	follow := flag.Bool("follow", true, "keep reading as the file grows (false: stop at its end)")
	flag.Parse()
	log.SetFlags(0)
	if *file == "" {
		log.Fatal("ship: -file is required")
	}
	if *host == "" {
		*host, _ = os.Hostname()
	}
	z, err := client.ParseCodec(*codec)
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Lines are batched for up to 50ms and each batch is compressed as a
	// whole: log lines repeat themselves, so zstd shrinks them severalfold.
	cl, err := client.New(ctx, client.Servers(*server), client.Compression(z), client.Linger(50*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	f, err := os.Open(*file)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	var failed atomic.Int64
	hdr := []client.Header{{Key: "file", Value: []byte(filepath.Base(*file))}}
	r := bufio.NewReader(f)
	var partial []byte
	lines := 0
	for ctx.Err() == nil {
		chunk, err := r.ReadBytes('\n')
		partial = append(partial, chunk...)
		if err == nil {
			line := partial[:len(partial)-1]
			partial = nil
			cl.Produce(ctx, &client.Record{Topic: *topic, Key: []byte(*host), Value: line, Headers: hdr},
				func(r *client.Record, err error) {
					if err != nil {
						failed.Add(1)
						log.Printf("%s: %v", r, err)
					}
				})
			lines++
			continue
		}
		if !errors.Is(err, io.EOF) {
			log.Fatal(err)
		}
		if !*follow {
			break
		}
		select { // at the end of the file: wait for more
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	if err := cl.Flush(context.Background()); err != nil {
		log.Fatal(err)
	}
	if failed.Load() > 0 {
		log.Fatalf("%d of %d lines failed", failed.Load(), lines)
	}
	fmt.Printf("shipped %d lines of %s as %s\n", lines, *file, *host)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
