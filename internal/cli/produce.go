package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/wispbus/wisp/client"
)

func init() { extraCommands = append(extraCommands, newProduceCmd) }

// defaultMaxLine is the longest stdin line produce accepts by default. The
// broker's default max.message.bytes is about the same, so a longer record
// would be refused anyway.
const defaultMaxLine = 1 << 20

func newProduceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce records read from stdin, one per line",
		Long: `Produce records read from stdin, one per line (without the newline).

Records are sent asynchronously in batches; the command waits for every one
to be acknowledged before it exits and prints a summary on stderr. It stops
at the first record the server refuses. Ctrl-C stops reading and delivers
what was read.`,
		Example: `  seq 1000 | wisp produce numbers
  printf 'alice:1\nbob:2\n' | wisp produce scores --key-separator :
  wisp produce events -k host1 -H source=cli --acks leader -z zstd < events.txt`,
		Args: exactArgs("TOPIC"),
		RunE: runProduce,
	}
	f := cmd.Flags()
	f.StringP("key", "k", "", "key of every record (default: no key)")
	f.String("key-separator", "", "split each line at the first SEP into key SEP value (a line without SEP has no key)")
	f.StringArrayP("header", "H", nil, "header key=value added to every record; repeatable")
	f.Int32P("partition", "p", -1, "produce to this partition (default: by key hash, unkeyed records spread)")
	f.String("acks", "all", "acknowledgement: none, leader or all")
	f.StringP("compression", "z", "none", "compression: none, gzip, snappy, lz4 or zstd")
	f.Int("max-line-bytes", defaultMaxLine, "longest accepted line")
	f.BoolP("verbose", "v", false, "print the partition and offset of every record")
	addClientFlags(cmd)
	return cmd
}

func parseAcks(s string) (client.Acks, bool) {
	switch strings.ToLower(s) {
	case "none", "0":
		return client.AcksNone, true
	case "leader", "1":
		return client.AcksLeader, true
	case "all", "-1":
		return client.AcksAll, true
	}
	return 0, false
}

// produceRun is the state one produce command shares with its callbacks,
// which run on the client's callback goroutine (and, for records refused
// before they are buffered, on the calling goroutine).
type produceRun struct {
	topic   string
	verbose bool
	json    bool
	out     io.Writer

	acked    atomic.Int64
	canceled atomic.Int64 // not sent: Ctrl-C came while Produce waited for buffer space
	failed   atomic.Bool

	mu       sync.Mutex // guards out and firstErr
	firstErr error
	errLine  int64
}

func (p *produceRun) promise(line int64) func(*client.Record, error) {
	return func(r *client.Record, err error) {
		switch {
		case err == nil:
			p.acked.Add(1)
			if p.verbose {
				p.mu.Lock()
				if p.json {
					b, _ := json.Marshal(struct {
						Topic     string `json:"topic"`
						Partition int32  `json:"partition"`
						Offset    int64  `json:"offset"`
					}{r.Topic, r.Partition, r.Offset})
					fmt.Fprintf(p.out, "%s\n", b)
				} else {
					fmt.Fprintf(p.out, "partition %d offset %d\n", r.Partition, r.Offset)
				}
				p.mu.Unlock()
			}
		case errors.Is(err, context.Canceled):
			p.canceled.Add(1)
		default:
			p.mu.Lock()
			if p.firstErr == nil || line < p.errLine {
				p.firstErr, p.errLine = err, line
			}
			p.mu.Unlock()
			p.failed.Store(true)
		}
	}
}

func runProduce(cmd *cobra.Command, args []string) error {
	o, err := clientOptsFrom(cmd)
	if err != nil {
		return err
	}
	topic := args[0]
	f := cmd.Flags()
	key, _ := f.GetString("key")
	sep, _ := f.GetString("key-separator")
	rawHeaders, _ := f.GetStringArray("header")
	partition, _ := f.GetInt32("partition")
	acksName, _ := f.GetString("acks")
	codecName, _ := f.GetString("compression")
	maxLine, _ := f.GetInt("max-line-bytes")
	verbose, _ := f.GetBool("verbose")

	acks, ok := parseAcks(acksName)
	if !ok {
		return usageError(cmd, "--acks %q: want none, leader or all", acksName)
	}
	codec, err := client.ParseCodec(strings.ToLower(codecName))
	if err != nil {
		return usageError(cmd, "--compression %q: want none, gzip, snappy, lz4 or zstd", codecName)
	}
	if flagChanged(cmd, "key") && sep != "" {
		return usageError(cmd, "--key and --key-separator are exclusive")
	}
	if maxLine <= 0 {
		return usageError(cmd, "--max-line-bytes must be positive")
	}
	kvs, err := parseKVs(cmd, "header", rawHeaders)
	if err != nil {
		return err
	}
	var headers []client.Header
	for _, kv := range kvs {
		headers = append(headers, client.Header{Key: kv[0], Value: []byte(kv[1])})
	}
	var fixedKey []byte
	if flagChanged(cmd, "key") {
		fixedKey = []byte(key)
	}

	opts := []client.Opt{client.RequiredAcks(acks), client.Compression(codec)}
	if partition >= 0 {
		opts = append(opts, client.RecordPartitioner(client.ManualPartitioner()))
	}
	ctx := cmd.Context()
	c, err := o.connect(ctx, opts...)
	if err != nil {
		return err
	}
	defer c.Close()

	if partition >= 0 {
		// Name a partition that does not exist plainly, rather than as
		// the broker's "unknown topic or partition". A missing topic is
		// left to the produce, which creates it when the broker
		// auto-creates topics.
		actx, cancel := o.adminCtx(ctx)
		info, err := c.DescribeTopic(actx, topic)
		cancel()
		if err == nil && int(partition) >= len(info.Partitions) {
			return fmt.Errorf("topic %q has no partition %d (it has %d)", topic, partition, len(info.Partitions))
		}
	}

	run := &produceRun{topic: topic, verbose: verbose, json: o.json(), out: cmd.OutOrStdout()}
	lines := make(chan lineChunk, 4)
	done := make(chan struct{})
	// The reader goroutine ends at EOF, at a read error or once done is
	// closed and it next tries to hand over lines. When the command stops
	// early (Ctrl-C, a refused record) it may still be blocked reading a
	// terminal; it is not waited for then, as no Read of stdin can be
	// interrupted, and the process exits right after.
	go readLines(cmd.InOrStdin(), maxLine, lines, done)
	defer close(done)

	start := time.Now()
	var lineNo int64
	var readErr error
	interrupted := false
loop:
	for !run.failed.Load() {
		select {
		case chunk, ok := <-lines:
			if !ok {
				break loop
			}
			for _, line := range chunk.lines {
				lineNo++
				rec := &client.Record{Topic: topic, Partition: partition, Value: line, Headers: headers}
				switch {
				case fixedKey != nil:
					rec.Key = fixedKey
				case sep != "":
					if k, v, found := bytes.Cut(line, []byte(sep)); found {
						rec.Key, rec.Value = k, v
					}
				}
				c.Produce(ctx, rec, run.promise(lineNo))
				if ctx.Err() != nil {
					interrupted = true
					break loop
				}
			}
			if chunk.err != nil {
				readErr = fmt.Errorf("stdin line %d: %w", lineNo+1, chunk.err)
				break loop
			}
		case <-ctx.Done():
			interrupted = true
			break loop
		}
	}

	// Deliver what was read. After Ctrl-C the command's context is done, so
	// the wait is bounded by --timeout instead.
	fctx := ctx
	if interrupted {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(context.Background(), o.timeout)
		defer cancel()
	}
	flushErr := c.Flush(fctx)
	elapsed := time.Since(start)

	n := run.acked.Load()
	run.mu.Lock()
	firstErr, errLine := run.firstErr, run.errLine
	run.mu.Unlock()
	if n > 0 || (firstErr == nil && readErr == nil) {
		rate := float64(n) / max(elapsed.Seconds(), 1e-9)
		note := ""
		if interrupted {
			note = " (interrupted)"
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "produced %d records to %s in %v (%.0f rec/s)%s\n",
			n, topic, elapsed.Round(time.Millisecond), rate, note)
	}
	switch {
	case readErr != nil:
		return readErr
	case errors.Is(firstErr, client.ErrRecordTooLarge):
		return fmt.Errorf("line %d: %w", errLine, o.explain(firstErr, topic, ""))
	case firstErr != nil:
		return o.explain(firstErr, topic, "")
	case flushErr != nil && !interrupted:
		return o.explain(flushErr, topic, "")
	case flushErr != nil:
		left := lineNo - n - run.canceled.Load()
		return fmt.Errorf("interrupted: %d records not acknowledged within --timeout %v", left, o.timeout)
	}
	return nil
}

// lineChunk is lines read from stdin in one go; err ends the input.
type lineChunk struct {
	lines [][]byte
	err   error
}

// readLines reads newline-separated records from r and sends them on out,
// in chunks: a chunk is handed over as soon as reading more would block
// (so an interactive line is produced at once) or it is large. Lines are
// copied into a slab per chunk, since the records keep them until they are
// acknowledged. out is closed at EOF or after a chunk with an error.
func readLines(r io.Reader, maxLine int, out chan<- lineChunk, done <-chan struct{}) {
	defer close(out)
	// One more byte than the longest line, for its newline.
	br := bufio.NewReaderSize(r, maxLine+1)
	const chunkLines, slabSize = 1024, 256 << 10
	var chunk lineChunk
	var slab []byte
	send := func() bool {
		if len(chunk.lines) == 0 && chunk.err == nil {
			return true
		}
		select {
		case out <- chunk:
			chunk = lineChunk{}
			return true
		case <-done:
			return false
		}
	}
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			chunk.err = fmt.Errorf("longer than %d bytes (--max-line-bytes)", maxLine)
			send()
			return
		case err == nil:
			line = line[:len(line)-1]
		case errors.Is(err, io.EOF) && len(line) == 0:
			send()
			return
		case errors.Is(err, io.EOF):
			// A last line without a newline.
		default:
			chunk.err = err
			send()
			return
		}
		if len(line) > maxLine {
			chunk.err = fmt.Errorf("longer than %d bytes (--max-line-bytes)", maxLine)
			send()
			return
		}
		if slab == nil || cap(slab)-len(slab) < len(line) {
			slab = make([]byte, 0, max(slabSize, len(line)))
		}
		start := len(slab)
		slab = append(slab, line...)
		chunk.lines = append(chunk.lines, slab[start:len(slab):len(slab)])
		if err != nil { // EOF after a last unterminated line
			send()
			return
		}
		if br.Buffered() == 0 || len(chunk.lines) >= chunkLines {
			if !send() {
				return
			}
		}
	}
}
