package chaos

import (
	"strings"
	"testing"
	"time"
)

// synth builds a history and final state: the producer "p" sends seqs
// 1..n to partition 0, acknowledged at offsets 0..n-1, and a consumer "c"
// polls them all; every replica holds log (offset i = the value log[i]).
type synth struct {
	ops   []Op
	final Final
	t0    time.Time
}

func newSynth(n int, replicas int) *synth {
	s := &synth{t0: time.Unix(1000, 0), final: Final{Topic: "t", HW: map[int32]int64{0: int64(n)}, Replicas: map[int32][]Replica{}}}
	for i := 0; i < n; i++ {
		id := RecordID{"p", int64(i + 1)}
		at := s.t0.Add(time.Duration(i) * 10 * time.Millisecond)
		s.ops = append(s.ops,
			Op{Process: "p", Kind: Send, Outcome: Invoke, ID: id, Offset: -1, Time: at},
			Op{Process: "p", Kind: Send, Outcome: OK, ID: id, Partition: 0, Offset: int64(i), Time: at.Add(time.Millisecond)})
	}
	s.ops = append(s.ops, Op{Process: "c", Kind: Assign, Partition: 0})
	for i := 0; i < n; i++ {
		s.ops = append(s.ops, Op{Process: "c", Kind: Poll, Outcome: OK, ID: RecordID{"p", int64(i + 1)}, Partition: 0, Offset: int64(i)})
	}
	for node := 1; node <= replicas; node++ {
		rep := Replica{Node: node, End: int64(n)}
		for i := 0; i < n; i++ {
			rep.Records = append(rep.Records, LogRecord{Offset: int64(i), ID: RecordID{"p", int64(i + 1)}})
			rep.Batches = append(rep.Batches, Batch{Base: int64(i), Last: int64(i), Bytes: []byte{byte(i)}})
		}
		s.final.Replicas[0] = append(s.final.Replicas[0], rep)
	}
	return s
}

func (s *synth) check() Result {
	return Check("synthetic", s.ops, s.final, Window{Start: s.t0, End: s.t0.Add(time.Second)}, true)
}

// setRecord changes what every replica holds at offset off.
func (s *synth) setRecord(off int64, id RecordID) {
	for _, rep := range s.final.Replicas[0] {
		rep.Records[off].ID = id
	}
}

func TestCheckerClean(t *testing.T) {
	r := newSynth(20, 3).check()
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r.Acked != 20 || r.Ops != 61 {
		t.Fatalf("acked %d ops %d, want 20 and 61", r.Acked, r.Ops)
	}
	// Acks every 10ms from t0, the window ends at t0+1s: the longest gap is
	// from the last ack (t0+191ms) to the end.
	if want := 809 * time.Millisecond; r.Unavailable != want {
		t.Fatalf("unavailable %v, want %v", r.Unavailable, want)
	}
}

func TestCheckerFlags(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(s *synth)
		field  func(r Result) int
		want   int
		hint   string
	}{
		{"lost ack", func(s *synth) {
			// Offset 5 holds something never sent: p:6 is gone.
			s.setRecord(5, RecordID{"other", 1})
			s.ops = dropPolls(s.ops, 5)
		}, func(r Result) int { return r.Lost }, 1, "p:6 acknowledged"},
		{"lost at the tail", func(s *synth) {
			s.final.HW[0] = 19 // the last record is not committed
		}, func(r Result) int { return r.Lost }, 1, "p:20 acknowledged"},
		{"duplicate", func(s *synth) {
			s.setRecord(7, RecordID{"p", 3}) // p:3 again at 7 (p:8 lost too)
			s.ops = dropPolls(s.ops, 7)
		}, func(r Result) int { return r.Duplicated }, 1, "p:3 stored 2 times"},
		{"reorder", func(s *synth) {
			// p:11 and p:12 swapped: 11 comes after 12.
			s.setRecord(10, RecordID{"p", 12})
			s.setRecord(11, RecordID{"p", 11})
		}, func(r Result) int { return r.Reordered }, 1, "p:11 after p:12"},
		{"replica divergence", func(s *synth) {
			s.final.Replicas[0][2].Records[4].ID = RecordID{"ghost", 1}
		}, func(r Result) int { return r.Divergent }, 1, "node 3 has ghost:1"},
		{"replica missing a committed record", func(s *synth) {
			rep := &s.final.Replicas[0][1]
			rep.Records = rep.Records[:19]
		}, func(r Result) int { return r.Divergent }, 1, "node 2 lacks"},
		{"replica bytes differ", func(s *synth) {
			s.final.Replicas[0][1].Batches[3].Bytes = []byte{99}
		}, func(r Result) int { return r.Divergent }, 1, "differ byte-wise"},
		{"consumer skip", func(s *synth) {
			s.ops = dropPolls(s.ops, 8, 9)
		}, func(r Result) int { return r.Skips }, 2, "jumped from 0/7 to 0/10"},
		{"never consumed", func(s *synth) {
			s.ops = dropPolls(s.ops, 19)
		}, func(r Result) int { return r.Unread }, 1, "never consumed"},
		{"moved", func(s *synth) {
			for i := range s.ops {
				if s.ops[i].Kind == Send && s.ops[i].Outcome == OK && s.ops[i].ID.Seq == 4 {
					s.ops[i].Offset = 17
				}
			}
		}, func(r Result) int { return r.Moved }, 1, "acknowledged at 0/17, stored at 0/3"},
		{"failed but present", func(s *synth) {
			for i := range s.ops {
				if s.ops[i].Kind == Send && s.ops[i].Outcome == OK && s.ops[i].ID.Seq == 2 {
					s.ops[i].Outcome = Fail
				}
			}
		}, func(r Result) int { return r.Unexpected }, 1, "failed for sure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSynth(20, 3)
			tc.mutate(s)
			r := s.check()
			if got := tc.field(r); got != tc.want {
				t.Fatalf("counted %d, want %d; result %+v", got, tc.want, r)
			}
			err := r.Err()
			if err == nil || !strings.Contains(err.Error(), tc.hint) {
				t.Fatalf("error %v does not mention %q", err, tc.hint)
			}
		})
	}
}

// A consumer whose partition was reassigned may restart anywhere: no skip.
func TestCheckerRebalanceIsNoSkip(t *testing.T) {
	s := newSynth(20, 1)
	var ops []Op
	for _, op := range s.ops {
		if op.Kind == Poll && op.Offset == 10 {
			ops = append(ops, Op{Process: "c", Kind: Assign, Partition: 0})
			ops = append(ops, Op{Process: "c", Kind: Poll, Outcome: OK, ID: RecordID{"p", 15}, Partition: 0, Offset: 14})
			ops = append(ops, Op{Process: "d", Kind: Assign, Partition: 0})
			for o := int64(10); o < 14; o++ {
				ops = append(ops, Op{Process: "d", Kind: Poll, Outcome: OK, ID: RecordID{"p", o + 1}, Partition: 0, Offset: o})
			}
			break
		}
		ops = append(ops, op)
	}
	for o := int64(15); o < 20; o++ {
		ops = append(ops, Op{Process: "c", Kind: Poll, Outcome: OK, ID: RecordID{"p", o + 1}, Partition: 0, Offset: o})
	}
	s.ops = ops
	if err := s.check().Err(); err != nil {
		t.Fatal(err)
	}
}

func TestCheckerUnavailable(t *testing.T) {
	s := newSynth(3, 1)
	// Acks at t0+1ms, +11ms and (moved) +700ms: the gap is 689ms.
	for i := range s.ops {
		if s.ops[i].Outcome == OK && s.ops[i].Kind == Send && s.ops[i].ID.Seq == 3 {
			s.ops[i].Time = s.t0.Add(700 * time.Millisecond)
		}
	}
	r := Check("u", s.ops, s.final, Window{Start: s.t0, End: s.t0.Add(800 * time.Millisecond)}, true)
	if want := 689 * time.Millisecond; r.Unavailable != want || r.PartUnavailable != want {
		t.Fatalf("unavailable %v (partition %v), want %v", r.Unavailable, r.PartUnavailable, want)
	}
	// Acks of another partition all along hide the gap from Unavailable,
	// not from PartUnavailable.
	for i := 0; i < 80; i++ {
		s.ops = append(s.ops, Op{Process: "q", Kind: Send, Outcome: OK, ID: RecordID{"q", int64(i + 1)}, Partition: 1, Offset: -1, Time: s.t0.Add(time.Duration(i) * 10 * time.Millisecond)})
	}
	r = Check("u", s.ops, s.final, Window{Start: s.t0, End: s.t0.Add(800 * time.Millisecond)}, false)
	if r.Unavailable != 10*time.Millisecond || r.PartUnavailable != 689*time.Millisecond {
		t.Fatalf("unavailable %v, worst partition %v; want 10ms and 689ms", r.Unavailable, r.PartUnavailable)
	}
	if !strings.Contains(Table([]Result{r}), "| u | ") {
		t.Fatalf("table: %s", Table([]Result{r}))
	}
}

// dropPolls removes the consumer's polls of the given offsets.
func dropPolls(ops []Op, offsets ...int64) []Op {
	var out []Op
	for _, op := range ops {
		if op.Kind == Poll && contains(offsets, op.Offset) {
			continue
		}
		out = append(out, op)
	}
	return out
}
