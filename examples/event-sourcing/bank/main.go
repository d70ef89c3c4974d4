// Command bank is a bank-account service whose only state is its event
// log: the topic "bank-events" (one partition, so every event has one
// place in one total order). Each command rebuilds the balances by
// replaying the log (from the latest snapshot, when there is one), checks
// the command against them and appends the event it decides on.
//
//	bank deposit  [-time T] ACCOUNT AMOUNT
//	bank withdraw [-time T] ACCOUNT AMOUNT       refused, writing nothing, on insufficient funds
//	bank transfer [-time T] FROM TO AMOUNT
//	bank balances [-at T] [-no-snapshot]          balances now, or as of time T (events at or before T)
//	bank snapshot                                 write the balances to the compacted topic "bank-snapshots"
//
// T is RFC 3339 ("2024-03-01T10:30:00Z"); -time backdates an event (for
// scripted histories), by default it is now. Amounts are whole units.
//
// "As of T" seeks by timestamp: the broker's time index answers the first
// offset whose timestamp is after T, and the replay stops there. A
// snapshot records the balances and the offset of the first event it does
// not cover; it is used when it is older than what is asked for.
//
// The service assumes one writer at a time: two concurrent withdrawals
// could both pass the balance check. (A production service would append
// with an expected version, or route each account's commands to one
// writer through a consumer group.)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/wispbus/wisp/client"
)

const (
	eventsTopic    = "bank-events"
	snapshotsTopic = "bank-snapshots"
	snapshotKey    = "balances"
)

// Event is one fact in the log.
type Event struct {
	Type    string `json:"type"` // deposited, withdrawn, transferred
	Account string `json:"account,omitempty"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Amount  int64  `json:"amount"`
}

// Snapshot is the state after every event before offset Next.
type Snapshot struct {
	Next     int64            `json:"next"`      // first event not covered
	LastTime int64            `json:"last_time"` // timestamp (ms) of the last event covered
	Balances map[string]int64 `json:"balances"`
}

// State is the balances rebuilt from the log.
type State struct {
	Snapshot
	Replayed     int   // events replayed after the snapshot
	SnapshotNext int64 // the snapshot used (-1: none)
}

func (s *State) apply(e Event) {
	switch e.Type {
	case "deposited":
		s.Balances[e.Account] += e.Amount
	case "withdrawn":
		s.Balances[e.Account] -= e.Amount
	case "transferred":
		s.Balances[e.From] -= e.Amount
		s.Balances[e.To] += e.Amount
	}
}

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		usage()
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	server := fs.String("server", envOr("WISP_SERVER", "127.0.0.1:7070"), "wisp server (QUIC, host:port)")
	at := fs.String("at", "", "balances: as of this time (RFC 3339)")
	evTime := fs.String("time", "", "deposit/withdraw/transfer: the event's time (RFC 3339; default now)")
	noSnap := fs.Bool("no-snapshot", false, "balances: replay the whole log, ignoring snapshots")
	_ = fs.Parse(os.Args[2:])
	args := fs.Args()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cl, err := client.New(ctx, client.Servers(*server))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	switch cmd {
	case "deposit", "withdraw", "transfer":
		ts := time.Now()
		if *evTime != "" {
			if ts, err = time.Parse(time.RFC3339, *evTime); err != nil {
				log.Fatal(err)
			}
		}
		ev, err := decide(ctx, cl, cmd, args)
		if err != nil {
			log.Fatalf("%s refused: %v", cmd, err)
		}
		val, _ := json.Marshal(ev)
		rec := &client.Record{Topic: eventsTopic, Key: []byte(ev.Account + ev.From), Value: val, Timestamp: ts}
		if err := cl.ProduceSync(ctx, rec); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("event %d: %s\n", rec.Offset, val)
	case "balances":
		var asOf time.Time
		if *at != "" {
			if asOf, err = time.Parse(time.RFC3339, *at); err != nil {
				log.Fatal(err)
			}
		}
		st, err := load(ctx, cl, asOf, !*noSnap)
		if err != nil {
			log.Fatal(err)
		}
		if st.SnapshotNext >= 0 {
			fmt.Fprintf(os.Stderr, "from the snapshot at offset %d, replayed %d events\n", st.SnapshotNext, st.Replayed)
		} else {
			fmt.Fprintf(os.Stderr, "no snapshot, replayed %d events\n", st.Replayed)
		}
		for _, a := range slices.Sorted(maps.Keys(st.Balances)) {
			fmt.Printf("%s %d\n", a, st.Balances[a])
		}
	case "snapshot":
		st, err := load(ctx, cl, time.Time{}, true)
		if err != nil {
			log.Fatal(err)
		}
		if err := ensureSnapshotsTopic(ctx, cl); err != nil {
			log.Fatal(err)
		}
		val, _ := json.Marshal(st.Snapshot)
		// One key: compaction keeps only the latest snapshot.
		if err := cl.ProduceSync(ctx, &client.Record{Topic: snapshotsTopic, Key: []byte(snapshotKey), Value: val}); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("snapshot at offset %d: %d accounts\n", st.Next, len(st.Balances))
	default:
		usage()
	}
}

// decide checks a command against the current balances and returns the
// event to append.
func decide(ctx context.Context, cl *client.Client, cmd string, args []string) (Event, error) {
	want := map[string]int{"deposit": 2, "withdraw": 2, "transfer": 3}[cmd]
	if len(args) != want {
		usage()
	}
	amount, err := strconv.ParseInt(args[len(args)-1], 10, 64)
	if err != nil || amount <= 0 {
		return Event{}, fmt.Errorf("amount %q: want a positive whole number", args[len(args)-1])
	}
	if cmd == "deposit" {
		return Event{Type: "deposited", Account: args[0], Amount: amount}, nil
	}
	st, err := load(ctx, cl, time.Time{}, true)
	if err != nil {
		return Event{}, err
	}
	if bal := st.Balances[args[0]]; bal < amount {
		return Event{}, fmt.Errorf("insufficient funds: %s has %d, needs %d", args[0], bal, amount)
	}
	if cmd == "withdraw" {
		return Event{Type: "withdrawn", Account: args[0], Amount: amount}, nil
	}
	return Event{Type: "transferred", From: args[0], To: args[1], Amount: amount}, nil
}

// load rebuilds the balances as of asOf (zero: now), from the latest
// snapshot when useSnapshot and the snapshot is not newer than asOf.
func load(ctx context.Context, cl *client.Client, asOf time.Time, useSnapshot bool) (*State, error) {
	st := &State{Snapshot: Snapshot{Balances: map[string]int64{}}, SnapshotNext: -1}
	// The end of the replay: the high watermark, or the first event after
	// asOf, found by the broker's time index.
	endAt := client.AtEnd()
	if !asOf.IsZero() {
		endAt = client.AtTime(asOf.Add(time.Millisecond))
	}
	end, err := partitionOffset(ctx, cl, eventsTopic, endAt)
	if err != nil {
		return nil, err
	}
	if end < 0 { // nothing after asOf: everything counts
		if end, err = partitionOffset(ctx, cl, eventsTopic, client.AtEnd()); err != nil {
			return nil, err
		}
	}
	if useSnapshot {
		snap, ok, err := latestSnapshot(ctx, cl)
		if err != nil {
			return nil, err
		}
		if ok && snap.Next <= end {
			st.Snapshot, st.SnapshotNext = snap, snap.Next
		}
	}
	err = readRange(ctx, cl, eventsTopic, st.Next, end, func(r *client.Record) error {
		var e Event
		if err := json.Unmarshal(r.Value, &e); err != nil {
			return fmt.Errorf("event %d: %w", r.Offset, err)
		}
		st.apply(e)
		st.Next, st.LastTime = r.Offset+1, r.Timestamp.UnixMilli()
		st.Replayed++
		return nil
	})
	return st, err
}

// latestSnapshot reads the last snapshot record, if any.
func latestSnapshot(ctx context.Context, cl *client.Client) (Snapshot, bool, error) {
	var snap Snapshot
	end, err := partitionOffset(ctx, cl, snapshotsTopic, client.AtEnd())
	if err != nil || end <= 0 {
		return snap, false, nil // no snapshots (yet)
	}
	var found bool
	err = readRange(ctx, cl, snapshotsTopic, end-1, end, func(r *client.Record) error {
		found = true
		return json.Unmarshal(r.Value, &snap)
	})
	return snap, found, err
}

// readRange calls fn for every record of partition 0 of topic in
// [from, end).
func readRange(ctx context.Context, cl *client.Client, topic string, from, end int64, fn func(*client.Record) error) error {
	if from >= end {
		return nil
	}
	cons, err := cl.NewConsumer(ctx, client.Partitions(topic, 0), client.StartOffset(client.At(from)))
	if err != nil {
		return err
	}
	defer cons.Close(context.Background())
	for {
		recs, err := cons.Poll(ctx)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Offset >= end {
				return nil
			}
			if err := fn(r); err != nil {
				return err
			}
			if r.Offset == end-1 {
				return nil
			}
		}
	}
}

// partitionOffset answers ListOffsets for partition 0 of topic.
func partitionOffset(ctx context.Context, cl *client.Client, topic string, at client.Offset) (int64, error) {
	offs, err := cl.ListOffsets(ctx, topic, at)
	if err != nil {
		return 0, err
	}
	for _, o := range offs {
		if o.Partition == 0 {
			return o.Offset, o.Err
		}
	}
	return 0, errors.New("no partition 0")
}

func ensureSnapshotsTopic(ctx context.Context, cl *client.Client) error {
	if _, err := cl.DescribeTopic(ctx, snapshotsTopic); err == nil {
		return nil
	}
	_, err := cl.CreateTopic(ctx, client.TopicSpec{Name: snapshotsTopic, Partitions: 1,
		Configs: map[string]string{"cleanup.policy": "compact"}})
	return err
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: bank deposit|withdraw [-time T] ACCOUNT AMOUNT
       bank transfer [-time T] FROM TO AMOUNT
       bank balances [-at T] [-no-snapshot]
       bank snapshot`)
	os.Exit(2)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
