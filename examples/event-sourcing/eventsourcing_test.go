package eventsourcing_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/examples/internal/extest"
)

// TestScenario scripts a day of a bank whose only state is its event log:
// deposits, a withdrawal, a transfer, a refused overdraft; balances now and
// as of 10:30 (seek by timestamp); a snapshot, more events, and balances
// from the snapshot that equal a full replay.
func TestScenario(t *testing.T) {
	n := extest.Node(t)
	bank := extest.Build(t, "examples/event-sourcing/bank")["bank"]
	extest.Wisp(t, n, "", "topic", "create", "bank-events", "-p", "1", "-c", "retention.ms=-1")

	run := func(args ...string) string {
		t.Helper()
		return extest.Run(t, n, "", bank, args...)
	}
	at := func(hhmm string) string { return "2024-03-01T" + hhmm + ":00Z" }
	run("deposit", "-time", at("09:00"), "alice", "100")
	run("deposit", "-time", at("09:10"), "bob", "50")
	run("withdraw", "-time", at("10:00"), "alice", "30")
	run("transfer", "-time", at("11:00"), "alice", "bob", "20")
	// bob has 70: refused, and nothing is written.
	if _, stderr, err := extest.RunErr(t, n, "", bank, "withdraw", "-time", at("11:30"), "bob", "500"); err == nil || !strings.Contains(stderr, "insufficient funds: bob has 70") {
		t.Fatalf("overdraft: err %v, stderr %q", err, stderr)
	}
	run("deposit", "-time", at("12:00"), "carol", "10")

	balances := func(wantOut, wantErr string, args ...string) {
		t.Helper()
		out, stderr, err := extest.RunErr(t, n, "", bank, append([]string{"balances"}, args...)...)
		if err != nil || out != wantOut || !strings.Contains(stderr, wantErr) {
			t.Fatalf("balances %v: err %v\nstdout %q, want %q\nstderr %q, want %q", args, err, out, wantOut, stderr, wantErr)
		}
	}
	balances("alice 50\nbob 70\ncarol 10\n", "no snapshot, replayed 5 events")
	// As of 10:30: the deposits and alice's withdrawal, not the transfer.
	balances("alice 70\nbob 50\n", "replayed 3 events", "-at", at("10:30"))
	// An event exactly at T counts.
	balances("alice 50\nbob 70\n", "replayed 4 events", "-at", at("11:00"))

	if out := run("snapshot"); out != "snapshot at offset 5: 3 accounts\n" {
		t.Fatalf("snapshot: %q", out)
	}
	run("deposit", "-time", at("13:00"), "carol", "5")
	run("withdraw", "-time", at("14:00"), "bob", "20")
	now := "alice 50\nbob 50\ncarol 15\n"
	balances(now, "from the snapshot at offset 5, replayed 2 events")
	balances(now, "no snapshot, replayed 7 events", "-no-snapshot")
	// A time before the snapshot replays from the start.
	balances("alice 70\nbob 50\n", "no snapshot, replayed 3 events", "-at", at("10:30"))
	// A time after it uses it.
	balances("alice 50\nbob 70\ncarol 15\n", "from the snapshot at offset 5, replayed 1 events", "-at", at("13:30"))
	if out := run("snapshot"); out != "snapshot at offset 7: 3 accounts\n" {
		t.Fatalf("second snapshot: %q", out)
	}
	balances(now, "from the snapshot at offset 7, replayed 0 events")

	// The log holds exactly the 7 accepted events; the snapshots topic is
	// compacted.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.New(ctx, client.Servers(n.QUIC))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := cl.ListOffsets(ctx, "bank-events", client.AtEnd())
	if err != nil || len(offs) != 1 || offs[0].Offset != 7 {
		t.Fatalf("bank-events end offsets %+v, %v; want one partition with 7 events", offs, err)
	}
	info, err := cl.DescribeTopic(ctx, "bank-snapshots")
	if err != nil || info.Effective["cleanup.policy"] != "compact" {
		t.Fatalf("bank-snapshots: %v, cleanup.policy=%q", err, info.Effective["cleanup.policy"])
	}
}
