package group

import (
	"errors"
	"testing"
)

// A coordinator that replicates its commits can be rebuilt elsewhere from
// the replicated entries alone; a failed replication commits nothing.
func TestReplicateAndRestore(t *testing.T) {
	var log [][]byte
	var fail error
	cfg := testConfig(t)
	cfg.Replicate = func(es []Entry) error {
		if fail != nil {
			return fail
		}
		for _, e := range es {
			log = append(log, e.Value)
		}
		return nil
	}
	a := openT(t, cfg)
	tp := TopicPartition{Topic: "t", Partition: 1}
	other := TopicPartition{Topic: "u", Partition: 0}
	if err := a.CommitOffsets("g", "", -1, map[TopicPartition]OffsetCommit{tp: {Offset: 5, LeaderEpoch: -1}, other: {Offset: 9}}); err != nil {
		t.Fatal(err)
	}
	if err := a.CommitOffsets("g", "", -1, map[TopicPartition]OffsetCommit{tp: {Offset: 7, LeaderEpoch: 2, Metadata: "m"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteOffsets("g", []TopicPartition{other}); err != nil {
		t.Fatal(err)
	}
	fail = errors.New("no quorum")
	if err := a.CommitOffsets("g", "", -1, map[TopicPartition]OffsetCommit{tp: {Offset: 100}}); !errors.Is(err, fail) {
		t.Fatalf("commit with replication down: %v", err)
	}
	if got, _ := a.FetchOffsets("g", []TopicPartition{tp}); got[tp].Offset != 7 {
		t.Fatalf("failed commit applied: offset %d", got[tp].Offset)
	}

	// Another node had stale offsets of its own; Restore replaces them.
	b := openT(t, testConfig(t))
	if err := b.CommitOffsets("g", "", -1, map[TopicPartition]OffsetCommit{other: {Offset: 1}, {Topic: "x"}: {Offset: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Restore(log); err != nil {
		t.Fatal(err)
	}
	got, err := b.FetchOffsets("g", []TopicPartition{tp, other, {Topic: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if got[tp].Offset != 7 || got[tp].Metadata != "m" || got[tp].LeaderEpoch != 2 {
		t.Fatalf("restored %+v, want offset 7 epoch 2 metadata m", got[tp])
	}
	if _, ok := got[other]; ok {
		t.Fatalf("deleted offset came back: %+v", got[other])
	}
	if _, ok := got[TopicPartition{Topic: "x"}]; ok {
		t.Fatal("stale local offset survived the restore")
	}
	if err := b.Restore([][]byte{{0xff}}); err == nil {
		t.Fatal("garbage restored without error")
	}
}

// FuzzEntry decodes arbitrary replicated entry values.
func FuzzEntry(f *testing.F) {
	f.Add(entryOf(&record{kind: recCommit, group: "g", topic: "t", partition: 1, offset: 5, epoch: -1, metadata: "m", time: 9}).Value)
	f.Add(entryOf(&record{kind: recDeleteGroup, group: "g"}).Value)
	f.Add([]byte{byte(recExpire)})
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeEntry(v)
		if err != nil {
			return
		}
		if again := entryOf(&r).Value; string(again) != string(v) {
			// Varints have one canonical encoding per value only when
			// minimal; a decodable non-minimal input may re-encode
			// shorter, but it must decode to the same record.
			if r2, err := decodeEntry(again); err != nil || r2 != r {
				t.Fatalf("re-encoded record differs: %+v vs %+v (%v)", r, r2, err)
			}
		}
	})
}
