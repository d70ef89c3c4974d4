package group

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestFencedCommits: commits outside a generation to a function group
// carrying an older leader epoch than the committed one are refused, and
// nothing else is: epoch -1 (a reset), other groups, and later epochs.
func TestFencedCommits(t *testing.T) {
	cfg := testConfig(t)
	c := openT(t, cfg)
	p := tp("orders", 0)
	commit := func(group string, offset int64, epoch int32) error {
		return c.CommitOffsets(group, "", -1, map[TopicPartition]OffsetCommit{p: {Offset: offset, LeaderEpoch: epoch}})
	}
	fn := FencedGroupPrefix + "enrich"
	steps := []struct {
		group  string
		offset int64
		epoch  int32
		fenced bool
	}{
		{fn, 10, 1, false},
		{fn, 20, 2, false}, // a new leader's worker
		{fn, 30, 1, true},  // the deposed leader's worker, late
		{fn, 25, 2, false}, // the same epoch may move back (a redeploy --from)
		{fn, 0, -1, false}, // a reset from outside
		{fn, 5, 1, false},  // after a reset, nothing to fence against
		{"plain", 10, 3, false},
		{"plain", 20, 1, false}, // ordinary groups are never fenced
	}
	for i, s := range steps {
		err := commit(s.group, s.offset, s.epoch)
		if got := errors.Is(err, kerr.FencedLeaderEpoch); got != s.fenced || (err != nil && !s.fenced) {
			t.Fatalf("step %d (%s offset %d epoch %d): err %v, want fenced=%v", i, s.group, s.offset, s.epoch, err, s.fenced)
		}
		if s.fenced {
			continue
		}
		got := fetchAll(t, c, s.group)
		if got[p].Offset != s.offset {
			t.Fatalf("step %d: committed %d, want %d", i, got[p].Offset, s.offset)
		}
	}
	if got := fetchAll(t, c, fn); got[p].Offset != 5 || got[p].LeaderEpoch != 1 {
		t.Fatalf("function group ends at %+v", got[p])
	}
}
