package bus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	wlog "github.com/wispbus/wisp/bus/log"
	"github.com/wispbus/wisp/internal/batch"
)

// recentBatches is how many batches per producer are remembered for
// duplicate detection (Kafka: max.in.flight.requests.per.connection <= 5).
const recentBatches = 5

// Partition is one partition of a topic on this node.
type Partition struct {
	topic string
	index int32
	log   *wlog.Log

	// mu serialises the idempotence check with the append, so that two
	// retries of one batch cannot both pass the check. It is released
	// before waiting for the fsync, which lets concurrent producers share
	// one group commit.
	mu         sync.Mutex
	always     bool
	appendTime bool
	producers  map[int64]*producerState
	gone       bool
	// epochs is the leader-epoch cache: where each epoch's batches begin.
	epochs []epochStart
	// repl is the replication state on a clustered broker, nil otherwise.
	repl *replicaState

	recordsIn, bytesIn, recordsOut, bytesOut atomic.Int64
}

type producerState struct {
	epoch   int16
	lastSeq int32
	recent  []batchRef // oldest first, at most recentBatches
}

type batchRef struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
}

// Topic is the partition's topic name.
func (p *Partition) Topic() string { return p.topic }

// Index is the partition number.
func (p *Partition) Index() int32 { return p.index }

// Log is the partition's log.
func (p *Partition) Log() *wlog.Log { return p.log }

func (p *Partition) markDeleted() {
	p.mu.Lock()
	p.gone = true
	p.mu.Unlock()
}

func (p *Partition) deleted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gone
}

// HighWatermark is the offset below which records are visible to consumers.
// With flush=always only fsynced records are visible, so a consumer never
// sees a record that a power loss could take back.
func (p *Partition) HighWatermark() int64 {
	p.mu.Lock()
	always := p.always
	if r := p.repl; r != nil {
		p.advanceHWLocked()
		hw := r.hw
		p.mu.Unlock()
		return hw
	}
	p.mu.Unlock()
	if always {
		return p.log.DurableOffset()
	}
	return p.log.EndOffset()
}

func (p *Partition) stats() PartitionStats {
	return PartitionStats{RecordsIn: p.recordsIn.Load(), BytesIn: p.bytesIn.Load(),
		RecordsOut: p.recordsOut.Load(), BytesOut: p.bytesOut.Load()}
}

// Produce appends batches; see Broker.Produce.
func (p *Partition) Produce(ctx context.Context, batches []byte, acks Acks) (ProduceResult, error) {
	var hdrs []batch.Header
	records := int64(0)
	err := batch.Each(batches, func(h batch.Header, _ []byte) error {
		if h.IsTransactional() || h.IsControl() {
			return fmt.Errorf("%w: transactional and control batches are not supported", kerr.InvalidRecord)
		}
		hdrs = append(hdrs, h)
		records += int64(h.NumRecords)
		return nil
	})
	if err != nil {
		return ProduceResult{}, fmt.Errorf("%w: %v", kerr.CorruptMessage, err)
	}
	if len(hdrs) == 0 {
		return ProduceResult{}, fmt.Errorf("%w: no record batch", kerr.CorruptMessage)
	}
	p.mu.Lock()
	if p.gone {
		p.mu.Unlock()
		return ProduceResult{}, fmt.Errorf("%w: %s/%d deleted", kerr.UnknownTopicOrPartition, p.topic, p.index)
	}
	epoch := int32(0)
	if r := p.repl; r != nil {
		if err := p.checkLeaderLocked(); err != nil {
			p.mu.Unlock()
			return ProduceResult{}, err
		}
		if acks == AcksAll && len(r.isr) < r.minISR {
			p.mu.Unlock()
			return ProduceResult{}, fmt.Errorf("%w: %s/%d has %d in-sync replicas, min.insync.replicas is %d",
				kerr.NotEnoughReplicas, p.topic, p.index, len(r.isr), r.minISR)
		}
		epoch = r.epoch
	}
	if dup, ok, err := p.checkSequencesLocked(hdrs); err != nil || ok {
		repl := p.repl != nil
		p.mu.Unlock()
		if err != nil {
			return ProduceResult{}, err
		}
		dup.LogStartOffset = p.log.StartOffset()
		if repl && acks == AcksAll {
			// A retry of a batch the leader has: answer once the
			// replicas have it too, as for the first attempt.
			if err := p.waitHW(ctx, dup.LastOffset+1, epoch); err != nil {
				return ProduceResult{}, err
			}
		}
		return dup, nil
	}
	res := ProduceResult{LogAppendTime: -1}
	if p.appendTime {
		now := time.Now().UnixMilli()
		res.LogAppendTime = now
		_ = batch.Each(batches, func(_ batch.Header, b []byte) error {
			batch.SetLogAppendTime(b, now)
			return nil
		})
	}
	first, last, err := p.log.Append(batches, epoch)
	if err != nil {
		p.mu.Unlock()
		return ProduceResult{}, err
	}
	p.recordProducersLocked(batches)
	if len(p.epochs) == 0 || p.epochs[len(p.epochs)-1].epoch < epoch {
		p.epochs = append(p.epochs, epochStart{epoch: epoch, start: first})
	}
	always := p.always
	repl := p.repl != nil
	p.mu.Unlock()

	p.recordsIn.Add(records)
	p.bytesIn.Add(int64(len(batches)))
	res.BaseOffset, res.LastOffset = first, last
	res.LogStartOffset = p.log.StartOffset()
	if always {
		// Even acks=0 waits: the append is not visible (high watermark)
		// until synced, and the frontend decides whether to answer.
		if err := p.log.Sync(ctx, last+1); err != nil {
			return res, fmt.Errorf("%w: %v", kerr.KafkaStorageError, err)
		}
	}
	if repl {
		p.mu.Lock()
		p.advanceHWLocked()
		p.mu.Unlock()
		if acks == AcksAll {
			if err := p.waitHW(ctx, last+1, epoch); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// checkSequencesLocked applies the idempotent-producer rules. It returns the
// original result when every batch is a retry of a recent one.
func (p *Partition) checkSequencesLocked(hdrs []batch.Header) (ProduceResult, bool, error) {
	dups := 0
	var res ProduceResult
	// Simulated state, so that several batches of one producer in one
	// request are checked against each other.
	next := map[int64]struct {
		epoch int16
		seq   int32
	}{}
	for i, h := range hdrs {
		if !h.Idempotent() {
			continue
		}
		st := p.producers[h.ProducerID]
		if st == nil {
			continue // unknown producer (new, or its history was retained away): accept
		}
		if h.ProducerEpoch < st.epoch {
			return res, false, fmt.Errorf("%w: producer %d epoch %d < %d", kerr.InvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, st.epoch)
		}
		if h.ProducerEpoch > st.epoch {
			continue // a bumped epoch starts a new sequence
		}
		lastSeq := h.BaseSequence + h.LastOffsetDelta
		if dup, ok := st.find(h.BaseSequence, lastSeq); ok {
			if dups == 0 {
				res = ProduceResult{BaseOffset: dup.firstOffset, LogAppendTime: -1, Duplicate: true}
			}
			res.LastOffset = dup.lastOffset
			dups++
			continue
		}
		expect := st.lastSeq + 1
		if n, ok := next[h.ProducerID]; ok && n.epoch == h.ProducerEpoch {
			expect = n.seq
		}
		if expect < 0 { // int32 wrap-around, as in Kafka
			expect = 0
		}
		if h.BaseSequence != expect {
			return res, false, fmt.Errorf("%w: producer %d batch %d: sequence %d, expected %d",
				kerr.OutOfOrderSequenceNumber, h.ProducerID, i, h.BaseSequence, expect)
		}
		next[h.ProducerID] = struct {
			epoch int16
			seq   int32
		}{h.ProducerEpoch, lastSeq + 1}
	}
	if dups > 0 && dups != len(hdrs) {
		return res, false, fmt.Errorf("%w: request mixes retried and new batches", kerr.OutOfOrderSequenceNumber)
	}
	return res, dups > 0, nil
}

func (st *producerState) find(first, last int32) (batchRef, bool) {
	for _, r := range st.recent {
		if r.firstSeq == first && r.lastSeq == last {
			return r, true
		}
	}
	return batchRef{}, false
}

// recordProducersLocked updates producer state from appended batches (with
// their offsets already assigned).
func (p *Partition) recordProducersLocked(batches []byte) {
	_ = batch.Each(batches, func(h batch.Header, _ []byte) error {
		p.observeLocked(h)
		return nil
	})
}

func (p *Partition) observeLocked(h batch.Header) {
	if !h.Idempotent() {
		return
	}
	st := p.producers[h.ProducerID]
	if st == nil || h.ProducerEpoch > st.epoch {
		st = &producerState{epoch: h.ProducerEpoch}
		p.producers[h.ProducerID] = st
	}
	ref := batchRef{firstSeq: h.BaseSequence, lastSeq: h.BaseSequence + h.LastOffsetDelta,
		firstOffset: h.BaseOffset, lastOffset: h.LastOffset()}
	st.lastSeq = ref.lastSeq
	if len(st.recent) == recentBatches {
		st.recent = append(st.recent[:0], st.recent[1:]...)
	}
	st.recent = append(st.recent, ref)
}

// rebuildProducers replays batch headers so that idempotent retries across
// a restart are still recognised.
func (p *Partition) rebuildProducers() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.ScanHeaders(p.log.StartOffset(), func(h batch.Header) error {
		p.observeLocked(h)
		p.observeEpochLocked(h)
		return nil
	})
}

// Fetch reads whole batches from offset; see Broker.Fetch.
func (p *Partition) Fetch(offset int64, maxBytes int) (FetchResult, error) {
	p.mu.Lock()
	err := p.checkLeaderLocked()
	p.mu.Unlock()
	if err != nil {
		return FetchResult{}, err
	}
	hw := p.HighWatermark()
	res := FetchResult{HighWatermark: hw, LastStableOffset: hw, LogStartOffset: p.log.StartOffset()}
	if offset < res.LogStartOffset || offset > p.log.EndOffset() {
		return res, fmt.Errorf("%w: %s/%d offset %d not in [%d, %d]", kerr.OffsetOutOfRange,
			p.topic, p.index, offset, res.LogStartOffset, p.log.EndOffset())
	}
	if offset >= hw {
		return res, nil
	}
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	data, err := p.log.Read(offset, maxBytes, hw)
	if err != nil {
		return res, err
	}
	res.Batches = data
	n := int64(0)
	for b := data; len(b) >= batch.HeaderSize; {
		h, err := batch.ParseHeader(b)
		if err != nil || h.Size() > len(b) {
			break
		}
		n += int64(h.NumRecords)
		b = b[h.Size():]
	}
	p.recordsOut.Add(n)
	p.bytesOut.Add(int64(len(data)))
	return res, nil
}

// ListOffset resolves a special or real timestamp; see Broker.ListOffset.
func (p *Partition) ListOffset(ts int64) (int64, int64, error) {
	p.mu.Lock()
	err := p.checkLeaderLocked()
	p.mu.Unlock()
	if err != nil {
		return 0, 0, err
	}
	switch ts {
	case Earliest:
		return p.log.StartOffset(), -1, nil
	case Latest:
		return p.HighWatermark(), -1, nil
	}
	off, rts, err := p.log.OffsetForTime(ts)
	if err != nil {
		return 0, 0, err
	}
	if off >= p.HighWatermark() {
		return -1, -1, nil
	}
	return off, rts, nil
}
