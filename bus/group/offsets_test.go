package group

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func tp(topic string, p int32) TopicPartition { return TopicPartition{Topic: topic, Partition: p} }

func fetchAll(t *testing.T, c *Coordinator, group string) map[TopicPartition]OffsetCommit {
	t.Helper()
	got, err := c.FetchOffsets(group, nil)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	return got
}

func TestCommitsSurviveRestart(t *testing.T) {
	cfg := testConfig(t)
	c, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	j := join(t, c, joinReq("g", "", "a"))
	if _, err := c.Sync(ctxT(t), SyncRequest{Group: "g", MemberID: j.MemberID, Generation: j.Generation}); err != nil {
		t.Fatal(err)
	}
	want := map[TopicPartition]OffsetCommit{}
	for i := range 200 {
		oc := OffsetCommit{Offset: int64(i), LeaderEpoch: int32(i % 3), Metadata: fmt.Sprint("m", i)}
		p := tp("events", int32(i%4))
		want[p] = oc
		if err := c.CommitOffsets("g", j.MemberID, j.Generation, map[TopicPartition]OffsetCommit{p: oc}); err != nil {
			t.Fatal(err)
		}
	}
	simple := map[TopicPartition]OffsetCommit{tp("logs", 0): {Offset: 7, LeaderEpoch: -1}}
	if err := c.CommitOffsets("standalone", "", -1, simple); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.Dir, journalName)
	before, _ := os.Stat(path)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if after.Size() >= before.Size()/4 {
		t.Errorf("Close did not compact: %d -> %d bytes", before.Size(), after.Size())
	}

	c = openT(t, cfg)
	if got := fetchAll(t, c, "g"); !maps.Equal(got, want) {
		t.Fatalf("after restart\n got %v\nwant %v", got, want)
	}
	if got := fetchAll(t, c, "standalone"); !maps.Equal(got, simple) {
		t.Fatalf("simple commit after restart %v", got)
	}
	got, err := c.FetchOffsets("g", []TopicPartition{tp("events", 1), tp("missing", 0)})
	if err != nil || len(got) != 1 || got[tp("events", 1)] != want[tp("events", 1)] {
		t.Fatalf("fetch some %v %v", got, err)
	}
	wantList := []GroupSummary{{Group: "g", ProtocolType: "consumer", State: StateEmpty}, {Group: "standalone", State: StateEmpty}}
	if gs := c.ListGroups(); fmt.Sprint(gs) != fmt.Sprint(wantList) {
		t.Fatalf("list after restart %v", gs)
	}
	if d := describe(t, c, "g"); d.State != StateEmpty || d.ProtocolType != "consumer" {
		t.Fatalf("describe after restart %+v", d)
	}
}

func TestCommitRules(t *testing.T) {
	c := openT(t, testConfig(t))
	ctx := ctxT(t)
	offs := map[TopicPartition]OffsetCommit{tp("t", 0): {Offset: 1}}

	// No group: a simple commit works; a generation does not.
	if err := c.CommitOffsets("g", "", -1, offs); err != nil {
		t.Fatal(err)
	}
	wantKerr(t, c.CommitOffsets("g", "m", 3, offs), kerr.IllegalGeneration)

	a, b := stableTwo(t, c, joinReq("g", "", "a"), joinReq("g", "", "b"))
	if err := c.CommitOffsets("g", a.MemberID, a.Generation, map[TopicPartition]OffsetCommit{tp("t", 0): {Offset: 10}}); err != nil {
		t.Fatal(err)
	}
	wantKerr(t, c.CommitOffsets("g", a.MemberID, a.Generation-1, offs), kerr.IllegalGeneration)
	wantKerr(t, c.CommitOffsets("g", "stranger", a.Generation, offs), kerr.UnknownMemberID)
	// The group has members: no simple commits.
	wantKerr(t, c.CommitOffsets("g", "", -1, offs), kerr.UnknownMemberID)
	wantKerr(t, c.CommitOffsets("g", a.MemberID, a.Generation, map[TopicPartition]OffsetCommit{
		tp("t", 1): {Metadata: string(make([]byte, DefaultMaxOffsetMetadata+1))}}), kerr.OffsetMetadataTooLarge)

	// While preparing a rebalance the current generation may still commit;
	// while completing it may not.
	chB := joinAsync(ctx, c, joinReq("g", b.MemberID, "b-new"))
	checkFor(t, 5*time.Second, time.Millisecond, wantState(c, "g", StatePreparingRebalance))
	if err := c.CommitOffsets("g", a.MemberID, a.Generation, map[TopicPartition]OffsetCommit{tp("t", 0): {Offset: 11}}); err != nil {
		t.Fatal(err)
	}
	a2 := join(t, c, joinReq("g", a.MemberID, "a"))
	recvJoin(t, chB)
	wantKerr(t, c.CommitOffsets("g", a2.MemberID, a2.Generation, offs), kerr.RebalanceInProgress)
	wantKerr(t, c.CommitOffsets("g", a.MemberID, a.Generation, offs), kerr.RebalanceInProgress)

	if got := fetchAll(t, c, "g"); got[tp("t", 0)].Offset != 11 || len(got) != 1 {
		t.Fatalf("offsets %v", got)
	}
}

func TestDeleteGroupsAndOffsets(t *testing.T) {
	cfg := testConfig(t)
	c := openT(t, cfg)
	ctx := ctxT(t)
	meta := (&kmsg.ConsumerMemberMetadata{Topics: []string{"sub"}}).AppendTo(nil)
	req := joinReq("g", "", "")
	req.Protocols[0].Metadata = meta
	j := join(t, c, req)
	if _, err := c.Sync(ctx, SyncRequest{Group: "g", MemberID: j.MemberID, Generation: j.Generation}); err != nil {
		t.Fatal(err)
	}
	offs := map[TopicPartition]OffsetCommit{tp("sub", 0): {Offset: 1}, tp("other", 0): {Offset: 2}, tp("gone", 3): {Offset: 3}}
	if err := c.CommitOffsets("g", j.MemberID, j.Generation, offs); err != nil {
		t.Fatal(err)
	}
	if err := c.CommitOffsets("solo", "", -1, map[TopicPartition]OffsetCommit{tp("gone", 0): {Offset: 4}, tp("x", 0): {Offset: 5}}); err != nil {
		t.Fatal(err)
	}

	perTP, err := c.DeleteOffsetsDetail("g", []TopicPartition{tp("sub", 0), tp("other", 0)})
	if err != nil {
		t.Fatal(err)
	}
	wantKerr(t, perTP[tp("sub", 0)], kerr.GroupSubscribedToTopic)
	if perTP[tp("other", 0)] != nil {
		t.Fatal(perTP)
	}
	wantKerr(t, c.DeleteOffsets("nope", []TopicPartition{tp("x", 0)}), kerr.GroupIDNotFound)

	c.DropTopic("gone")
	if got := fetchAll(t, c, "g"); len(got) != 1 || got[tp("sub", 0)].Offset != 1 {
		t.Fatalf("g offsets %v", got)
	}
	if got := fetchAll(t, c, "solo"); len(got) != 1 || got[tp("x", 0)].Offset != 5 {
		t.Fatalf("solo offsets %v", got)
	}

	res := c.DeleteGroups("g", "solo", "nope", "")
	wantKerr(t, res["g"], kerr.NonEmptyGroup)
	wantKerr(t, res["nope"], kerr.GroupIDNotFound)
	wantKerr(t, res[""], kerr.InvalidGroupID)
	if res["solo"] != nil {
		t.Fatal(res["solo"])
	}
	if err := c.Leave("g", j.MemberID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteOffsets("g", []TopicPartition{tp("sub", 0)}); err != nil {
		t.Fatal(err)
	}
	if err := c.CommitOffsets("g", "", -1, offs); err != nil {
		t.Fatal(err)
	}
	if res := c.DeleteGroups("g"); res["g"] != nil {
		t.Fatal(res)
	}
	if gs := c.ListGroups(); len(gs) != 0 {
		t.Fatalf("groups left %v", gs)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c2 := openT(t, cfg)
	if gs := c2.ListGroups(); len(gs) != 0 {
		t.Fatalf("groups after restart %v", gs)
	}
}

func TestOffsetsExpire(t *testing.T) {
	cfg := testConfig(t)
	cfg.OffsetsRetention = 150 * time.Millisecond
	cfg.RetentionCheckInterval = 10 * time.Millisecond
	c := openT(t, cfg)
	ctx := ctxT(t)
	offs := map[TopicPartition]OffsetCommit{tp("t", 0): {Offset: 1}}
	if err := c.CommitOffsets("solo", "", -1, offs); err != nil {
		t.Fatal(err)
	}
	j := join(t, c, joinReq("live", "", "a"))
	if _, err := c.Sync(ctx, SyncRequest{Group: "live", MemberID: j.MemberID, Generation: j.Generation}); err != nil {
		t.Fatal(err)
	}
	if err := c.CommitOffsets("live", j.MemberID, j.Generation, offs); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if err := c.Heartbeat("live", j.MemberID, "", j.Generation); err != nil {
			return err
		}
		if got := fetchAll(t, c, "solo"); len(got) != 0 {
			return fmt.Errorf("solo still has %v", got)
		}
		return nil
	})
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("expired after %v, retention 150ms", el)
	}
	// Wait past another retention period: the group with a member keeps its
	// offsets.
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		if err := c.Heartbeat("live", j.MemberID, "", j.Generation); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := fetchAll(t, c, "live"); len(got) != 1 {
		t.Fatalf("live group lost offsets: %v", got)
	}
	// Once empty, its offsets go too, and so does the group.
	if err := c.Leave("live", j.MemberID); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if gs := c.ListGroups(); len(gs) != 0 {
			return fmt.Errorf("groups %v", gs)
		}
		return nil
	})
}

// TestGroupCommit commits from many goroutines at once: every commit is
// durable, and they share fsyncs.
func TestGroupCommit(t *testing.T) {
	cfg := testConfig(t)
	c, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				err := c.CommitOffsets(fmt.Sprint("g", w), "", -1, map[TopicPartition]OffsetCommit{tp("t", int32(i)): {Offset: int64(i)}})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openT(t, cfg)
	for w := range writers {
		if got := fetchAll(t, c, fmt.Sprint("g", w)); len(got) != each {
			t.Fatalf("group %d has %d offsets", w, len(got))
		}
	}
}

// crash stops a store's flusher and drops its file without Close's
// compaction, as a kill would.
func crash(s *store) {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	s.f.Close()
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestTornJournal cuts the journal at random points, flips bytes and
// appends garbage: Open always succeeds with every frame before the damage.
func TestTornJournal(t *testing.T) {
	dir := t.TempDir()
	s, err := openStore(dir, discard())
	if err != nil {
		t.Fatal(err)
	}
	// states[i] is the state after i frames, ends[i] where frame i ends.
	states := []map[TopicPartition]OffsetCommit{{}}
	ends := []int64{int64(len(journalMagic))}
	cur := map[TopicPartition]OffsetCommit{}
	for i := range 40 {
		var recs []record
		for p := range i%3 + 1 {
			r := record{kind: recCommit, group: "g", topic: "t", partition: int32((i + p) % 5), offset: int64(i*10 + p),
				epoch: int32(i), metadata: fmt.Sprint("meta", i), time: 1000 + int64(i)}
			recs = append(recs, r)
			cur[tp(r.topic, r.partition)] = OffsetCommit{Offset: r.offset, LeaderEpoch: r.epoch, Metadata: r.metadata}
		}
		if i == 30 {
			recs = append(recs, record{kind: recDelete, group: "g", topic: "t", partition: 0})
			delete(cur, tp("t", 0))
		}
		if err := s.write(recs); err != nil {
			t.Fatal(err)
		}
		states = append(states, maps.Clone(cur))
		ends = append(ends, s.size)
	}
	crash(s)
	data, err := os.ReadFile(filepath.Join(dir, journalName))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != ends[len(ends)-1] {
		t.Fatalf("file %d bytes, expected %d", len(data), ends[len(ends)-1])
	}
	// frameAt returns how many frames end at or before n.
	framesBefore := func(n int64) int {
		k := 0
		for k+1 < len(ends) && ends[k+1] <= n {
			k++
		}
		return k
	}
	check := func(t *testing.T, content []byte, wantFrames int) {
		t.Helper()
		d := t.TempDir()
		path := filepath.Join(d, journalName)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := openStore(d, discard())
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		got := s.fetch("g", nil)
		// The store still works after the repair, and the commit lands
		// after the cut.
		if err := s.write([]record{{kind: recCommit, group: "after", topic: "t", offset: 1}}); err != nil {
			t.Fatal(err)
		}
		crash(s)
		if !maps.Equal(got, states[wantFrames]) {
			t.Fatalf("got %v, want state after %d frames %v", got, wantFrames, states[wantFrames])
		}
		s2, err := openStore(d, discard())
		if err != nil {
			t.Fatal(err)
		}
		defer crash(s2)
		if got2 := s2.fetch("g", nil); !maps.Equal(got2, states[wantFrames]) {
			t.Fatalf("after reopen %v", got2)
		}
		if after := s2.fetch("after", nil); len(after) != 1 {
			t.Fatalf("commit after repair lost: %v", after)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	t.Run("truncate", func(t *testing.T) {
		cuts := []int64{0, 1, 5, int64(len(journalMagic)), int64(len(data))}
		for range 30 {
			cuts = append(cuts, rng.Int64N(int64(len(data))))
		}
		for _, n := range cuts {
			check(t, data[:n], framesBefore(n))
		}
	})
	t.Run("garbage tail", func(t *testing.T) {
		for _, g := range [][]byte{{0}, {0, 0, 0, 0, 0, 0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff}, {0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7}} {
			check(t, append(append([]byte{}, data...), g...), len(ends)-1)
		}
		for range 10 {
			g := make([]byte, 1+rng.IntN(64))
			for i := range g {
				g[i] = byte(rng.Uint32())
			}
			n := ends[1+rng.IntN(len(ends)-1)]
			check(t, append(append([]byte{}, data[:n]...), g...), framesBefore(n))
		}
	})
	t.Run("flipped byte", func(t *testing.T) {
		for range 20 {
			at := int64(len(journalMagic)) + rng.Int64N(int64(len(data)-len(journalMagic)))
			bad := append([]byte{}, data...)
			bad[at] ^= 0x40
			check(t, bad, framesBefore(at))
		}
	})
	t.Run("not a journal", func(t *testing.T) {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, journalName), []byte("something else entirely"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := openStore(d, discard()); err == nil {
			t.Fatal("opened a file that is not a journal")
		}
	})
}

// TestCompaction checks the runtime and open-time rewrites keep the state.
func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	s, err := openStore(dir, discard())
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.runtimeSlack = 64 << 10
	s.mu.Unlock()
	// One frame bigger than the runtime slack, all for one partition.
	recs := make([]record, 0, 10_000)
	for i := range cap(recs) {
		recs = append(recs, record{kind: recCommit, group: "g", topic: "topic", partition: 1, offset: int64(i), time: 5})
	}
	recs = append(recs, record{kind: recGroupType, group: "g", metadata: "consumer"})
	if err := s.write(recs); err != nil {
		t.Fatal(err)
	}
	if err := s.write([]record{{kind: recCommit, group: "g", topic: "topic", partition: 2, offset: 9, time: 6}}); err != nil {
		t.Fatal(err)
	}
	if s.size > 1<<10 {
		t.Fatalf("journal not compacted at runtime: %d bytes", s.size)
	}
	want := map[TopicPartition]OffsetCommit{tp("topic", 1): {Offset: 9_999}, tp("topic", 2): {Offset: 9}}
	crash(s)

	s, err = openStore(dir, discard())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.fetch("g", nil); !maps.Equal(got, want) {
		t.Fatalf("after compaction %v", got)
	}
	if pt, _ := s.groupInfo("g"); pt != "consumer" {
		t.Fatalf("protocol type %q", pt)
	}
	// Garbage past 2x live + slack is compacted at Open.
	var many []record
	for i := range 20_000 {
		many = append(many, record{kind: recCommit, group: "g", topic: "topic", partition: 1, offset: int64(i)})
	}
	if err := s.write(many); err != nil {
		t.Fatal(err)
	}
	big := s.size
	crash(s)
	s, err = openStore(dir, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer crash(s)
	if s.size >= big/10 {
		t.Fatalf("not compacted at open: %d -> %d", big, s.size)
	}
	if got := s.fetch("g", nil); got[tp("topic", 1)].Offset != 19_999 || got[tp("topic", 2)].Offset != 9 {
		t.Fatalf("after open compaction %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, journalName+".tmp")); !os.IsNotExist(err) {
		t.Fatalf("temp file left: %v", err)
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err == nil {
		t.Fatal("empty Dir validated")
	}
	cfg := Config{Dir: t.TempDir()}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("zero config with Dir: %v", err)
	}
	bad := cfg
	bad.MinSessionTimeout, bad.MaxSessionTimeout = time.Minute, time.Second
	if _, err := Open(bad); err == nil {
		t.Fatal("min > max opened")
	}
	bad = cfg
	bad.InitialRebalanceDelay = -1
	if bad.Validate() == nil {
		t.Fatal("negative delay validated")
	}
	c := openT(t, cfg)
	_, err := c.Join(context.Background(), JoinRequest{Group: "g", SessionTimeout: time.Second,
		ProtocolType: "consumer", Protocols: []Protocol{{Name: "range"}}})
	wantKerr(t, err, kerr.InvalidSessionTimeout) // default minimum is 6s
}
