package chaos

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"
)

// LogRecord is one data record of a replica's log.
type LogRecord struct {
	Offset int64
	ID     RecordID
}

// Batch is one record batch of a replica's log, as stored.
type Batch struct {
	Base, Last int64
	Bytes      []byte
}

// Replica is one node's copy of one partition.
type Replica struct {
	Node    int
	Records []LogRecord // in offset order
	Batches []Batch
	End     int64 // next offset
}

// Final is the state the checker judges the history against: every
// replica of every partition of the topic, and each partition's high
// watermark (what the cluster says is committed).
type Final struct {
	Topic    string
	HW       map[int32]int64
	Replicas map[int32][]Replica
}

// Window is when the producers ran; the unavailability is measured in it.
type Window struct{ Start, End time.Time }

// Result is what the checker found in one run.
type Result struct {
	Name          string
	Ops           int           // operations (every invoke and completion)
	Acked         int           // sends acknowledged
	Indeterminate int           // sends that ended in info (may or may not be there)
	Failed        int           // sends that certainly failed
	Lost          int           // acknowledged, not in the committed log
	Moved         int           // acknowledged at one offset, found at another
	Duplicated    int           // extra copies of a record in the log
	Reordered     int           // records of one producer out of sequence order in a partition
	Skips         int           // records a consumer jumped over within one assignment
	Unread        int           // acknowledged records no consumer ever received (after the final drain)
	Divergent     int           // offsets below the high watermark where replicas differ
	Unexpected    int           // sends that failed for sure but are in the log
	Unavailable   time.Duration // longest stretch with no ack at all
	// PartUnavailable is the longest stretch in which one partition got no
	// ack (with many partitions the others hide a failover from Unavailable).
	PartUnavailable time.Duration
	Problems        []string // the first examples of each anomaly
}

// Err is nil when the run lost, duplicated, reordered or diverged nothing.
func (r Result) Err() error {
	if r.Lost+r.Moved+r.Duplicated+r.Reordered+r.Divergent+r.Unexpected+r.Skips+r.Unread == 0 {
		return nil
	}
	return fmt.Errorf("%s: lost %d, moved %d, duplicated %d, reordered %d, divergent %d, unexpected %d, skips %d, unread %d:\n  %s",
		r.Name, r.Lost, r.Moved, r.Duplicated, r.Reordered, r.Divergent, r.Unexpected, r.Skips, r.Unread, strings.Join(r.Problems, "\n  "))
}

const maxProblems = 20

func (r *Result) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

type position struct {
	partition int32
	offset    int64
}

// Check judges a history against the final logs. drained says whether the
// consumers were given the chance to read everything (only then is an
// acknowledged record no consumer received an anomaly).
func Check(name string, ops []Op, final Final, w Window, drained bool) Result {
	r := Result{Name: name, Ops: len(ops)}

	// The committed log of each partition, as the first replica holds it,
	// and how the other replicas differ from it below the high watermark.
	committed := map[int32]map[int64]RecordID{}
	where := map[RecordID][]position{}
	parts := make([]int32, 0, len(final.Replicas))
	for p := range final.Replicas {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		reps := final.Replicas[p]
		hw := final.HW[p]
		committed[p] = map[int64]RecordID{}
		if len(reps) == 0 {
			continue
		}
		ref := reps[0]
		for _, rec := range ref.Records {
			if rec.Offset < hw {
				committed[p][rec.Offset] = rec.ID
				where[rec.ID] = append(where[rec.ID], position{p, rec.Offset})
			}
		}
		refBytes := committedBytes(ref, hw)
		for _, other := range reps[1:] {
			diff := 0
			seen := map[int64]bool{}
			for _, rec := range other.Records {
				if rec.Offset >= hw {
					continue
				}
				seen[rec.Offset] = true
				if id, ok := committed[p][rec.Offset]; !ok || id != rec.ID {
					diff++
					r.problem("partition %d offset %d: node %d has %s, node %d has %s", p, rec.Offset, ref.Node, id, other.Node, rec.ID)
				}
			}
			for off := range committed[p] {
				if !seen[off] {
					diff++
					r.problem("partition %d offset %d: node %d lacks what node %d has (%s)", p, off, other.Node, ref.Node, committed[p][off])
				}
			}
			if diff == 0 && !bytes.Equal(refBytes, committedBytes(other, hw)) {
				diff++
				r.problem("partition %d: node %d's batches below %d differ byte-wise from node %d's", p, other.Node, hw, ref.Node)
			}
			r.Divergent += diff
		}
	}

	// Duplicates and producer order within each partition.
	for id, pos := range where {
		if len(pos) > 1 {
			r.Duplicated += len(pos) - 1
			r.problem("%s stored %d times: %v", id, len(pos), pos)
		}
	}
	for _, p := range parts {
		offs := make([]int64, 0, len(committed[p]))
		for o := range committed[p] {
			offs = append(offs, o)
		}
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		last := map[string]int64{}
		for _, o := range offs {
			id := committed[p][o]
			if len(where[id]) > 1 {
				continue // counted as a duplicate
			}
			prev, ok := last[id.Producer]
			if ok && id.Seq < prev {
				r.Reordered++
				r.problem("partition %d offset %d: %s after %s:%d", p, o, id, id.Producer, prev)
			}
			if !ok || id.Seq > prev {
				last[id.Producer] = id.Seq
			}
		}
	}

	// Sends: every acknowledged record must be in the committed log, at the
	// offset it was acknowledged at.
	var ackTimes []time.Time
	partAcks := map[int32][]time.Time{}
	outcome := map[RecordID]Outcome{}
	for _, op := range ops {
		if op.Kind != Send || op.Outcome == Invoke {
			continue
		}
		outcome[op.ID] = op.Outcome
		switch op.Outcome {
		case OK:
			r.Acked++
			ackTimes = append(ackTimes, op.Time)
			partAcks[op.Partition] = append(partAcks[op.Partition], op.Time)
			pos, ok := where[op.ID]
			switch {
			case !ok:
				r.Lost++
				r.problem("%s acknowledged at %d/%d at %s, not in the log", op.ID, op.Partition, op.Offset, op.Time.Format("15:04:05.000"))
			case op.Offset >= 0 && (pos[0].partition != op.Partition || pos[0].offset != op.Offset):
				r.Moved++
				r.problem("%s acknowledged at %d/%d, stored at %d/%d", op.ID, op.Partition, op.Offset, pos[0].partition, pos[0].offset)
			}
		case Fail:
			r.Failed++
			if _, ok := where[op.ID]; ok {
				r.Unexpected++
				r.problem("%s failed for sure (%s) but is in the log", op.ID, op.Err)
			}
		case Info:
			r.Indeterminate++
		}
	}

	// Consumers: within one assignment a consumer's offsets of a partition
	// go up with no committed record left out.
	type cp struct {
		process   string
		partition int32
	}
	lastPolled := map[cp]int64{}
	polled := map[RecordID]bool{}
	for _, op := range ops {
		key := cp{op.Process, op.Partition}
		switch {
		case op.Kind == Assign:
			delete(lastPolled, key)
		case op.Kind == Poll && op.Outcome == OK:
			polled[op.ID] = true
			if id, ok := committed[op.Partition][op.Offset]; !ok || id != op.ID {
				r.Divergent++
				r.problem("%s polled %s at %d/%d, the log has %v there", op.Process, op.ID, op.Partition, op.Offset, id)
			}
			if prev, ok := lastPolled[key]; ok && op.Offset > prev+1 {
				for o := prev + 1; o < op.Offset; o++ {
					if _, ok := committed[op.Partition][o]; ok {
						r.Skips++
						r.problem("%s jumped from %d/%d to %d/%d over %s", op.Process, op.Partition, prev, op.Partition, op.Offset, committed[op.Partition][o])
					}
				}
			}
			if prev, ok := lastPolled[key]; !ok || op.Offset > prev {
				lastPolled[key] = op.Offset
			}
		}
	}
	if drained {
		for id, o := range outcome {
			if o == OK && len(where[id]) > 0 && !polled[id] {
				r.Unread++
				r.problem("%s acknowledged and stored but never consumed", id)
			}
		}
	}

	r.Unavailable = longestGap(ackTimes, w)
	for _, times := range partAcks {
		if d := longestGap(times, w); d > r.PartUnavailable {
			r.PartUnavailable = d
		}
	}
	return r
}

// longestGap is the longest stretch of w without one of times.
func longestGap(times []time.Time, w Window) time.Duration {
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	var gap time.Duration
	prev := w.Start
	for _, at := range times {
		if at.Before(w.Start) || at.After(w.End) {
			continue
		}
		if d := at.Sub(prev); d > gap {
			gap = d
		}
		prev = at
	}
	if !w.End.IsZero() {
		if d := w.End.Sub(prev); d > gap {
			gap = d
		}
	}
	return gap
}

// committedBytes concatenates a replica's batches that end below hw.
func committedBytes(rep Replica, hw int64) []byte {
	var b []byte
	for _, bt := range rep.Batches {
		if bt.Last < hw {
			b = append(b, bt.Bytes...)
		}
	}
	return b
}

// Table formats results as a Markdown table.
func Table(rs []Result) string {
	var sb strings.Builder
	sb.WriteString("| scenario | ops | acked | info | lost | dup | reord | skips | unread | diverg | unavail s | worst partition unavail s |\n")
	sb.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rs {
		fmt.Fprintf(&sb, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %.1f | %.1f |\n",
			r.Name, r.Ops, r.Acked, r.Indeterminate, r.Lost+r.Moved, r.Duplicated, r.Reordered, r.Skips, r.Unread, r.Divergent, r.Unavailable.Seconds(), r.PartUnavailable.Seconds())
	}
	return sb.String()
}
