package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/client"
)

func init() { extraCommands = append(extraCommands, newConsumeCmd) }

func newConsumeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print records of a topic",
		Long: `Print records of a topic, by default each record's value on its own line,
until Ctrl-C (or -n / -e).

Without -g every partition (or those given with -p) is read from -o and
nothing is committed. With -g GROUP the command joins the consumer group,
reads the partitions the group assigns it from the group's committed
offsets (-o only applies where the group has none) and commits what it
printed, periodically and on exit.

-f formats each record: %k key, %v value, %p partition, %o offset,
%t timestamp (ms since the epoch), %T topic, %h headers (k=v,k=v), %%
percent; \n, \t, \r and \\ are escapes. --format json prints one JSON
object per record instead: topic, partition, offset, timestamp (RFC 3339),
key, value and headers (bytes that are not UTF-8 are base64 and marked
"binary").`,
		Example: `  wisp consume orders -o start -e
  wisp consume orders -g billing
  wisp consume orders -p 0 -p 1 -o -10 -f '%p/%o %k=%v\n'
  wisp consume orders -o @2024-05-01T12:00:00Z -n 100 --format json`,
		Args: exactArgs("TOPIC"),
		RunE: runConsume,
	}
	f := cmd.Flags()
	f.StringP("group", "g", "", "consume as a member of this consumer group, committing offsets")
	f.StringP("offset", "o", "start", "where to start: start, end, an offset N, -N (last N records of each partition) or @TIME (RFC 3339 or ms)")
	f.Int32SliceP("partition", "p", nil, "consume only these partitions (repeatable; not with -g)")
	f.IntP("count", "n", 0, "exit after this many records (0: no limit)")
	f.BoolP("exit", "e", false, "exit once every partition read reached the high watermark it had at start")
	f.StringP("record-format", "f", `%v\n`, "how to print each record (see above)")
	addClientFlags(cmd)
	return cmd
}

// consumeFlags are the parsed flags of consume.
type consumeFlags struct {
	topic      string
	group      string
	offset     offsetSpec
	partitions []int32
	count      int
	exitAtEnd  bool
	format     recordFormat
	json       bool
}

func parseConsumeFlags(cmd *cobra.Command, args []string, o clientOpts) (consumeFlags, error) {
	f := cmd.Flags()
	cf := consumeFlags{topic: args[0], json: o.json()}
	cf.group, _ = f.GetString("group")
	offset, _ := f.GetString("offset")
	cf.partitions, _ = f.GetInt32Slice("partition")
	cf.count, _ = f.GetInt("count")
	cf.exitAtEnd, _ = f.GetBool("exit")
	format, _ := f.GetString("record-format")
	var err error
	if cf.offset, err = parseOffset(offset); err != nil {
		return cf, usageError(cmd, "-o: %v", err)
	}
	if cf.format, err = parseRecordFormat(format); err != nil {
		return cf, usageError(cmd, "-f: %v", err)
	}
	switch {
	case cf.group != "" && len(cf.partitions) > 0:
		return cf, usageError(cmd, "-p and -g are exclusive: a group assigns partitions itself")
	case cf.group != "" && cf.offset.kind == offsetBeforeEnd:
		return cf, usageError(cmd, "-o -N is not supported with -g")
	case cf.json && flagChanged(cmd, "record-format"):
		return cf, usageError(cmd, "-f and --format json are exclusive")
	case cf.count < 0:
		return cf, usageError(cmd, "-n must not be negative")
	}
	for _, p := range cf.partitions {
		if p < 0 {
			return cf, usageError(cmd, "-p %d: partitions are numbered from 0", p)
		}
	}
	return cf, nil
}

func runConsume(cmd *cobra.Command, args []string) error {
	o, err := clientOptsFrom(cmd)
	if err != nil {
		return err
	}
	cf, err := parseConsumeFlags(cmd, args, o)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	c, err := o.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	// The topic must exist: a consumer of a missing topic would wait
	// forever (or, on a broker that auto-creates topics, create it).
	actx, cancel := o.adminCtx(ctx)
	info, err := c.DescribeTopic(actx, cf.topic)
	cancel()
	if err != nil {
		return o.explain(err, cf.topic, "")
	}
	for _, p := range cf.partitions {
		if int(p) >= len(info.Partitions) {
			return fmt.Errorf("topic %q has no partition %d (it has %d)", cf.topic, p, len(info.Partitions))
		}
	}

	// runCtx ends the consume loop: Ctrl-C, or the end reached with -e
	// while no record is coming.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	end := newEndTracker(c, o, cf, info)

	opts := []client.ConsumerOpt{client.StartOffset(cf.offset.clientOffset())}
	switch {
	case cf.group != "":
		opts = append(opts, client.Topics(cf.topic), client.Group(cf.group))
	case len(cf.partitions) > 0:
		opts = append(opts, client.Partitions(cf.topic, cf.partitions...))
	default:
		opts = append(opts, client.Topics(cf.topic))
	}
	var assignErr error
	if cf.exitAtEnd {
		// Called on this goroutine, inside Poll, before records of a new
		// assignment are returned.
		opts = append(opts, client.OnAssigned(func(assigned map[string][]int32) {
			if err := end.assign(runCtx, assigned[cf.topic]); err != nil {
				assignErr = err
				stopRun()
			} else if end.done() {
				stopRun()
			}
		}))
	}
	sctx, cancel := o.adminCtx(ctx)
	cons, err := c.NewConsumer(sctx, opts...)
	cancel()
	if err != nil {
		return o.explain(err, cf.topic, cf.group)
	}
	if cf.offset.kind == offsetBeforeEnd {
		if err := seekBeforeEnd(ctx, cons, cf, info); err != nil {
			_ = cons.Close(context.Background())
			return o.explain(err, cf.topic, "")
		}
	}

	w := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
	loopErr := consumeLoop(runCtx, cons, cf, end, w, cmd.ErrOrStderr(), o)
	flushErr := w.Flush()

	// Close commits what was printed (with a group) and leaves the group;
	// after Ctrl-C the command's context is done, so bound it separately.
	cctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	closeErr := cons.Close(cctx)
	switch {
	case assignErr != nil:
		return o.explain(assignErr, cf.topic, cf.group)
	case loopErr != nil:
		return loopErr
	case flushErr != nil:
		return flushErr
	case closeErr != nil:
		return o.explain(closeErr, cf.topic, cf.group)
	}
	return nil
}

// consumeLoop polls and prints until runCtx ends, -n records were printed
// or, with -e, the end was reached.
func consumeLoop(runCtx context.Context, cons *client.Consumer, cf consumeFlags, end *endTracker,
	w *bufio.Writer, stderr io.Writer, o clientOpts) error {
	var buf []byte
	printed := 0
	for {
		if cf.exitAtEnd && end.done() {
			return nil
		}
		recs, err := cons.Poll(runCtx)
		if err != nil {
			if runCtx.Err() != nil {
				return nil // Ctrl-C, or -e with nothing left to read
			}
			if errors.Is(err, kerr.UnknownTopicOrPartition) || !client.IsRetryable(err) {
				return o.explain(err, cf.topic, cf.group)
			}
			fmt.Fprintf(stderr, "wisp: warning: %v\n", o.explain(err, cf.topic, cf.group))
			continue
		}
		for i, r := range recs {
			buf = buf[:0]
			if cf.json {
				buf = appendJSONRecord(buf, r)
			} else {
				buf = cf.format.append(buf, r)
			}
			if _, err := w.Write(buf); err != nil {
				return err
			}
			end.consumed(r)
			printed++
			if cf.count > 0 && printed >= cf.count {
				if cf.group != "" {
					unprint(runCtx, cons, recs[i+1:])
				}
				return nil
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

// unprint moves the consumer back to the first record of recs on each of
// their partitions, so that Close does not commit records a Poll returned
// but the command never printed (-n stopped in the middle of them).
func unprint(ctx context.Context, cons *client.Consumer, recs []*client.Record) {
	first := map[int32]*client.Record{}
	for _, r := range recs {
		if _, ok := first[r.Partition]; !ok {
			first[r.Partition] = r
		}
	}
	for p, r := range first {
		// An error means the partition was just revoked: its offsets are
		// no longer ours to commit.
		_ = cons.Seek(context.WithoutCancel(ctx), r.Topic, p, client.At(r.Offset))
	}
}

// seekBeforeEnd moves every partition read to N records before its high
// watermark (not before the log start), for -o -N.
func seekBeforeEnd(ctx context.Context, cons *client.Consumer, cf consumeFlags, info client.TopicInfo) error {
	for _, p := range info.Partitions {
		if len(cf.partitions) > 0 && !containsInt32(cf.partitions, p.Partition) {
			continue
		}
		at := max(p.LogStartOffset, p.HighWatermark-cf.offset.n)
		if err := cons.Seek(ctx, cf.topic, p.Partition, client.At(at)); err != nil {
			return err
		}
	}
	return nil
}

func containsInt32(xs []int32, x int32) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// endTracker decides -e: whether every assigned partition's next offset
// reached the high watermark the partition had when the command started.
// It is used from the consuming goroutine only (OnAssigned runs inside
// Poll), but done is also read between polls; the mutex keeps the race
// detector and future callers honest.
type endTracker struct {
	c    *client.Client
	o    clientOpts
	cf   consumeFlags
	info client.TopicInfo

	mu    sync.Mutex
	hw    map[int32]int64 // as of start
	next  map[int32]int64 // next offset of each assigned partition
	known bool            // the assignment is known
	parts []int32
}

func newEndTracker(c *client.Client, o clientOpts, cf consumeFlags, info client.TopicInfo) *endTracker {
	e := &endTracker{c: c, o: o, cf: cf, info: info, hw: map[int32]int64{}, next: map[int32]int64{}}
	for _, p := range info.Partitions {
		e.hw[p.Partition] = p.HighWatermark
	}
	return e
}

// assigned records a new assignment and where each of its partitions
// starts: the group's committed offset, else -o resolved.
func (e *endTracker) assign(ctx context.Context, parts []int32) error {
	ctx, cancel := e.o.adminCtx(ctx)
	defer cancel()
	start := map[int32]int64{}
	if e.cf.group != "" {
		offs, err := e.c.GroupOffsets(ctx, e.cf.group, e.cf.topic)
		if err != nil {
			return err
		}
		for _, g := range offs {
			if g.Topic == e.cf.topic && g.Committed >= 0 {
				start[g.Partition] = g.Committed
			}
		}
	}
	var byTime map[int32]int64
	for _, p := range parts {
		if _, ok := start[p]; ok {
			continue
		}
		pi := e.partition(p)
		switch e.cf.offset.kind {
		case offsetFromStart:
			start[p] = pi.LogStartOffset
		case offsetFromEnd:
			start[p] = pi.HighWatermark
		case offsetExact:
			start[p] = e.cf.offset.n
		case offsetBeforeEnd:
			start[p] = max(pi.LogStartOffset, pi.HighWatermark-e.cf.offset.n)
		case offsetAtTime:
			if byTime == nil {
				listed, err := e.c.ListOffsets(ctx, e.cf.topic, client.AtTime(e.cf.offset.at))
				if err != nil {
					return err
				}
				byTime = map[int32]int64{}
				for _, l := range listed {
					byTime[l.Partition] = l.Offset
				}
			}
			if off, ok := byTime[p]; ok && off >= 0 {
				start[p] = off
			} else {
				start[p] = pi.HighWatermark
			}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.known = true
	e.parts = append(e.parts[:0], parts...)
	for _, p := range parts {
		// A position already past the start (records printed before a
		// rebalance handed the partition back) stays.
		e.next[p] = max(e.next[p], start[p])
	}
	return nil
}

func (e *endTracker) partition(p int32) client.PartitionInfo {
	for _, pi := range e.info.Partitions {
		if pi.Partition == p {
			return pi
		}
	}
	return client.PartitionInfo{Partition: p}
}

func (e *endTracker) consumed(r *client.Record) {
	e.mu.Lock()
	e.next[r.Partition] = max(e.next[r.Partition], r.Offset+1)
	e.mu.Unlock()
}

func (e *endTracker) done() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.known {
		return false
	}
	for _, p := range e.parts {
		if e.next[p] < e.hw[p] {
			return false
		}
	}
	return true
}
