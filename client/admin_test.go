package client

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestAdmin(t *testing.T) {
	n := startNode(t, nil)
	ctx := testCtx(t, 30*time.Second)
	c := n.client(t)
	info, err := c.CreateTopic(ctx, TopicSpec{Name: "adm", Partitions: 2, Configs: map[string]string{"retention.ms": "3600000"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Partitions) != 2 || info.Configs["retention.ms"] != "3600000" || info.Effective["cleanup.policy"] != "delete" {
		t.Fatalf("created: %+v", info)
	}
	if _, err := c.CreateTopic(ctx, TopicSpec{Name: "adm"}); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create twice: %v", err)
	}
	if err := c.AlterTopicConfigs(ctx, "adm", map[string]string{"flush": "os"}, true); err != nil {
		t.Fatal(err)
	}
	if err := c.AlterTopicConfigs(ctx, "adm", map[string]string{"bogus": "1"}, true); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("bad config: %v", err)
	}
	if err := c.AddPartitions(ctx, "adm", 4); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeTopic(ctx, "adm")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Partitions) != 4 || d.Configs["flush"] != "os" || d.Configs["retention.ms"] != "3600000" {
		t.Fatalf("described: %+v", d)
	}
	if _, err := c.DescribeTopic(ctx, "nope"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("describe unknown: %v", err)
	}
	// Records at known times, to look up offsets by time.
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var recs []*Record
	for i := range 10 {
		recs = append(recs, &Record{Topic: "adm", Partition: 1, Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * time.Minute)})
	}
	m := n.client(t, RecordPartitioner(ManualPartitioner()))
	if err := m.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	offs, err := c.ListOffsets(ctx, "adm", AtTime(base.Add(4*time.Minute+time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) != 4 || offs[1].Offset != 5 || !offs[1].Timestamp.Equal(base.Add(5*time.Minute)) || offs[0].Offset != -1 {
		t.Fatalf("offsets by time: %+v", offs)
	}
	if offs, _ = c.ListOffsets(ctx, "adm", AtEnd()); offs[1].Offset != 10 {
		t.Fatalf("end offsets: %+v", offs)
	}
	if offs, _ = c.ListOffsets(ctx, "adm", AtStart()); offs[1].Offset != 0 {
		t.Fatalf("start offsets: %+v", offs)
	}
	// Group offsets and lag, committed from outside the group.
	if err := c.CommitGroupOffsets(ctx, "ops", map[string]map[int32]int64{"adm": {1: 3}}); err != nil {
		t.Fatal(err)
	}
	gos, err := c.GroupOffsets(ctx, "ops", "adm")
	if err != nil {
		t.Fatal(err)
	}
	if len(gos) != 4 || gos[1].Committed != 3 || gos[1].Lag != 7 || gos[0].Committed != -1 {
		t.Fatalf("group offsets: %+v", gos)
	}
	groups, err := c.ListGroups(ctx)
	if err != nil || len(groups) != 1 || groups[0].Group != "ops" {
		t.Fatalf("groups: %+v %v", groups, err)
	}
	gd, err := c.DescribeGroup(ctx, "ops")
	if err != nil || gd.State != "Empty" || len(gd.Offsets) != 1 || gd.Offsets[0].Lag != 7 {
		t.Fatalf("describe group: %+v %v", gd, err)
	}
	all, err := c.ListTopics(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("list: %+v %v", all, err)
	}
	if err := c.DeleteTopic(ctx, "adm"); err != nil {
		t.Fatal(err)
	}
	if all, _ = c.ListTopics(ctx); len(all) != 0 {
		t.Fatalf("after delete: %+v", all)
	}
	if rtt, err := c.Ping(ctx); err != nil || rtt <= 0 {
		t.Fatalf("ping %v %v", rtt, err)
	}
}

func TestSeek(t *testing.T) {
	n := startNode(t, map[string]string{"flush": "os"})
	ctx := testCtx(t, 30*time.Second)
	c := n.client(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var recs []*Record
	for i := range 100 {
		recs = append(recs, &Record{Topic: "seek", Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * time.Second)})
	}
	if err := c.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	next := func(k *Consumer) *Record {
		t.Helper()
		for rec, err := range k.Records(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			return rec
		}
		t.Fatal("no record")
		return nil
	}
	k, err := c.NewConsumer(ctx, Topics("seek"), StartOffset(At(40)))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(context.Background())
	if r := next(k); r.Offset != 40 {
		t.Fatalf("start at 40: got %d", r.Offset)
	}
	if r := next(k); r.Offset != 41 {
		t.Fatalf("then 41: got %d", r.Offset)
	}
	for _, c := range []struct {
		o    Offset
		want int64
	}{{At(7), 7}, {AtStart(), 0}, {AtTime(base.Add(90 * time.Second)), 90}, {At(3), 3}} {
		if err := k.SeekAll(ctx, c.o); err != nil {
			t.Fatal(err)
		}
		if r := next(k); r.Offset != c.want {
			t.Fatalf("seek %v: got %d, want %d", c.o, r.Offset, c.want)
		}
	}
	if err := k.Seek(ctx, "seek", 0, AtEnd()); err != nil {
		t.Fatal(err)
	}
	if err := c.ProduceSync(ctx, &Record{Topic: "seek", Value: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	if r := next(k); r.Offset != 100 || string(r.Value) != "new" {
		t.Fatalf("seek to end then new record: %s %q", r, r.Value)
	}
	if err := k.Seek(ctx, "seek", 5, AtStart()); err == nil {
		t.Fatal("seek on an unassigned partition")
	}
	// An offset beyond the log resets as ResetOffset says.
	k2, err := c.NewConsumer(ctx, Topics("seek"), StartOffset(At(5000)), ResetOffset(At(0)))
	if err != nil {
		t.Fatal(err)
	}
	defer k2.Close(context.Background())
	if r := next(k2); r.Offset != 0 {
		t.Fatalf("reset: got %d", r.Offset)
	}
}

// Manual commits never cover a record the application has not received,
// and Close of an auto-committing member commits what it processed.
func TestCommitSemantics(t *testing.T) {
	n := startNode(t, map[string]string{"flush": "os"})
	ctx := testCtx(t, 30*time.Second)
	c := n.client(t)
	var recs []*Record
	for i := range 50 {
		recs = append(recs, &Record{Topic: "cm", Value: []byte(fmt.Sprint(i))})
	}
	if err := c.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	k, err := c.NewConsumer(ctx, Topics("cm"), Group("manual"), DisableAutoCommit(), HeartbeatInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var got []*Record
	for rec, err := range k.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, rec); len(got) == 10 {
			break
		}
	}
	if err := k.CommitRecords(ctx, got[4]); err != nil {
		t.Fatal(err)
	}
	committed := func(group string) int64 {
		gos, err := c.GroupOffsets(ctx, group, "cm")
		if err != nil {
			t.Fatal(err)
		}
		return gos[0].Committed
	}
	if o := committed("manual"); o != 5 {
		t.Fatalf("committed %d, want 5", o)
	}
	if err := k.CommitRecords(ctx, &Record{Topic: "cm", Partition: 0, Offset: 30}); err == nil {
		t.Fatal("committed a record never delivered")
	}
	if err := k.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if o := committed("manual"); o != 10 {
		t.Fatalf("Commit: committed %d, want 10 (ten records received)", o)
	}
	if err := k.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if o := committed("manual"); o != 10 {
		t.Fatalf("Close without auto-commit moved the offset to %d", o)
	}

	a, err := c.NewConsumer(ctx, Topics("cm"), Group("auto"), AutoCommitInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	n7 := 0
	for _, err := range a.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if n7++; n7 == 7 {
			break
		}
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if o := committed("auto"); o != 7 {
		t.Fatalf("auto-commit on close: %d, want 7", o)
	}
	// A new member resumes from the commit.
	b, err := c.NewConsumer(ctx, Topics("cm"), Group("auto"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	for rec, err := range b.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Offset != 7 {
			t.Fatalf("resumed at %d, want 7", rec.Offset)
		}
		break
	}
}
