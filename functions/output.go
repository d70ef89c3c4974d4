package functions

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/batch"
)

// Headers of a dead-lettered record, added to the input record's own.
const (
	HeaderError           = "wisp.error"
	HeaderFunction        = "wisp.function"
	HeaderSourceTopic     = "wisp.source.topic"
	HeaderSourcePartition = "wisp.source.partition"
	HeaderSourceOffset    = "wisp.source.offset"
)

// batchOverhead is the RecordBatch header; recordOverhead bounds a record's
// varint fields.
const (
	batchOverhead  = batch.HeaderSize
	recordOverhead = 41
	topicMetaTTL   = 5 * time.Second
)

// unit is one unit's input range and output batches.
type unit struct {
	end                   int64 // exclusive end of the input range
	in, out, failed, dead int
	batches               []*outBatch
}

// outBatch collects a unit's records for one output partition.
type outBatch struct {
	topic     string
	partition int32
	recs      []batch.Record
	size      int
	raw       []byte
}

type staged struct {
	topic     string
	partition int32
	rec       batch.Record
	size      int
}

func recordSize(r *batch.Record) int {
	n := recordOverhead + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

// choosePartition is where an output goes when the module did not say:
// Kafka's murmur2 of the key, or, without a key, the input partition's
// number (modulo the output's partition count), which keeps an unkeyed
// stream's order from input partition to output partition.
func choosePartition(key []byte, input, n int32) int32 {
	if key != nil {
		return keyPartition(key, n)
	}
	return input % n
}

func (w *worker) topicMeta(name string) (*topicMeta, error) {
	if t := w.topics[name]; t != nil && time.Since(t.fetched) < topicMetaTTL {
		return t, nil
	}
	info, err := w.m.broker.Topic(name)
	if err != nil {
		return nil, fmt.Errorf("output topic %s: %w", name, err)
	}
	maxBytes, err := strconv.Atoi(info.Effective[bus.ConfigMaxMessageBytes])
	if err != nil || maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	t := &topicMeta{partitions: int32(len(info.Partitions)), maxBytes: maxBytes, fetched: time.Now()}
	if t.partitions == 0 {
		return nil, fmt.Errorf("output topic %s has no partitions", name)
	}
	w.topics[name] = t
	return t, nil
}

// assemble turns the outcomes of recs into a unit: each record's outputs
// (validated against the manifest) or, for a failed record, its dead
// letter. The unit ends early, at a record boundary, where one more record
// would overflow an output partition's batch: a unit writes at most one
// batch per output partition (see write).
func (w *worker) assemble(recs []batch.Record) (*unit, error) {
	man := w.spec.manifest
	u := &unit{end: recs[len(recs)-1].Offset + 1}
	byPart := map[string]map[int32]*outBatch{}
	var adds []staged
	for i := range recs {
		rec := &recs[i]
		oc := &w.outcomes[i]
		msg := oc.err
		adds = adds[:0]
		if msg == "" {
			for j := range oc.outputs {
				o := &oc.outputs[j]
				topic := o.Topic
				if topic == "" {
					topic = man.Outputs[0]
				}
				if !slices.Contains(man.Outputs, topic) {
					msg = fmt.Sprintf("write to undeclared topic %q (declared: %s)", topic, strings.Join(man.Outputs, ", "))
					break
				}
				meta, err := w.topicMeta(topic)
				if err != nil {
					return nil, err
				}
				p := o.Partition
				if p >= meta.partitions {
					msg = fmt.Sprintf("write to partition %d of %q, which has %d", p, topic, meta.partitions)
					break
				}
				if p < 0 {
					p = choosePartition(o.Record.Key, w.p, meta.partitions)
				}
				size := recordSize(&o.Record)
				if size+batchOverhead > meta.maxBytes {
					msg = fmt.Sprintf("output of %d bytes is larger than %q accepts (max.message.bytes %d)", size, topic, meta.maxBytes)
					break
				}
				adds = append(adds, staged{topic, p, o.Record, size})
			}
		}
		if msg == "" && overflows(nil, adds, w.topics) {
			msg = "its outputs to one partition are larger than max.message.bytes allows in one batch"
		}
		failed := msg != ""
		if failed {
			adds = adds[:0]
			if man.DLQ == "" {
				return nil, fmt.Errorf("record at offset %d failed (no dead-letter topic is configured): %s", rec.Offset, msg)
			}
			meta, err := w.topicMeta(man.DLQ)
			if err != nil {
				return nil, err
			}
			dl := w.deadLetter(rec, msg)
			size := recordSize(&dl)
			if size+batchOverhead > meta.maxBytes {
				return nil, fmt.Errorf("record at offset %d failed (%s) and is too large for the dead-letter topic %q", rec.Offset, msg, man.DLQ)
			}
			adds = append(adds, staged{man.DLQ, choosePartition(rec.Key, w.p, meta.partitions), dl, size})
		}
		if i > 0 && overflows(byPart, adds, w.topics) {
			u.end = rec.Offset
			break
		}
		for _, a := range adds {
			ps := byPart[a.topic]
			if ps == nil {
				ps = map[int32]*outBatch{}
				byPart[a.topic] = ps
			}
			ob := ps[a.partition]
			if ob == nil {
				ob = &outBatch{topic: a.topic, partition: a.partition, size: batchOverhead}
				ps[a.partition] = ob
				u.batches = append(u.batches, ob)
			}
			ob.recs = append(ob.recs, a.rec)
			ob.size += a.size
		}
		u.in++
		if failed {
			u.failed++
			u.dead++
			w.spec.log.printf("partition %d offset %d: dead-lettered to %s: %s", w.p, rec.Offset, man.DLQ, msg)
		} else {
			u.out += len(adds)
		}
	}
	return u, nil
}

// overflows reports whether adding adds would take any output partition's
// batch over its topic's max.message.bytes.
func overflows(byPart map[string]map[int32]*outBatch, adds []staged, topics map[string]*topicMeta) bool {
	extra := map[string]map[int32]int{}
	for _, a := range adds {
		if extra[a.topic] == nil {
			extra[a.topic] = map[int32]int{}
		}
		extra[a.topic][a.partition] += a.size
	}
	for topic, ps := range extra {
		for p, n := range ps {
			cur := batchOverhead
			if ob := byPart[topic][p]; ob != nil {
				cur = ob.size
			}
			if cur+n > topics[topic].maxBytes {
				return true
			}
		}
	}
	return false
}

// deadLetter is the record sent to the DLQ for a failed input record: the
// input record itself with the failure in its headers.
func (w *worker) deadLetter(rec *batch.Record, msg string) batch.Record {
	hs := make([]batch.RecordHeader, 0, len(rec.Headers)+5)
	hs = append(hs, rec.Headers...)
	hs = append(hs,
		batch.RecordHeader{Key: HeaderError, Value: []byte(msg)},
		batch.RecordHeader{Key: HeaderFunction, Value: []byte(w.spec.name)},
		batch.RecordHeader{Key: HeaderSourceTopic, Value: []byte(w.tp.Topic)},
		batch.RecordHeader{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(w.p)))},
		batch.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(rec.Offset, 10))},
	)
	return batch.Record{Timestamp: rec.Timestamp, Key: rec.Key, Value: rec.Value, Headers: hs}
}

// errCrash is returned by a test hook to stop a worker as if the process
// had died: no further commit.
var errCrash = errors.New("functions: simulated crash")

// testHookAfterWrite, when set, runs after a unit's outputs are written
// and before its input offset is recorded as done.
var testHookAfterWrite func(function string, partition int32) error

// write produces the unit's batches with the producer id and epoch of the
// intent (w.st), each batch starting at sequence 0. Partitions are written
// concurrently. A batch an output partition already has (a replay after a
// crash, or a retry after a partial failure) is acknowledged as a
// duplicate and not written again.
func (w *worker) write(u *unit) error {
	if len(u.batches) > 0 {
		if err := w.produce(u); err != nil {
			return err
		}
	}
	if testHookAfterWrite != nil {
		if err := testHookAfterWrite(w.spec.name, w.p); err != nil {
			return err
		}
	}
	return nil
}

func (w *worker) produce(u *unit) error {
	build := func() error {
		for _, ob := range u.batches {
			raw, err := batch.Build(batch.Options{ProducerID: w.st.pid, ProducerEpoch: w.st.epoch, BaseSequence: 0}, ob.recs)
			if err != nil {
				return fmt.Errorf("build output batch for %s/%d: %w", ob.topic, ob.partition, err)
			}
			ob.raw = raw
		}
		return nil
	}
	if err := build(); err != nil {
		return err
	}
	errs := make([]error, len(u.batches))
	send := func(i int) {
		ob := u.batches[i]
		_, errs[i] = w.m.produce(w.m.ctx, ob.topic, ob.partition, ob.raw)
	}
	for bumped := false; ; bumped = true {
		if len(u.batches) == 1 {
			send(0)
		} else {
			var wg sync.WaitGroup
			for i := range u.batches {
				wg.Add(1)
				go func() {
					defer wg.Done()
					send(i)
				}()
			}
			wg.Wait()
		}
		err := errors.Join(errs...)
		if err == nil {
			return nil
		}
		if bumped || !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
			for _, e := range errs {
				if errors.Is(e, kerr.UnknownTopicOrPartition) {
					clear(w.topics)
				}
			}
			return fmt.Errorf("write outputs: %w", err)
		}
		// A replayed unit produced different batches than before the
		// restart: the function is not deterministic. Write the unit
		// again under a new epoch; partitions that had the first version
		// keep it too (at-least-once for this unit).
		w.spec.log.printf("partition %d: the replay of offsets [%d, %d) wrote different outputs than before the restart (is the function deterministic?); writing them again, some may be duplicated",
			w.p, w.st.next, w.st.end)
		st := w.st
		if st.epoch++; st.epoch > maxEpoch {
			pid, _, err := w.m.broker.InitProducerID(w.m.ctx)
			if err != nil {
				return fmt.Errorf("allocate a producer id: %w", err)
			}
			st.pid, st.epoch = pid, 0
		}
		if err := w.commit(st); err != nil {
			return err
		}
		w.st = st
		if err := build(); err != nil {
			return err
		}
		clear(errs)
	}
}
