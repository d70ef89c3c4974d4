package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/internal/batch"
)

// Replication, Kafka style. The leader of a partition appends produced
// batches stamped with its leader epoch; each follower runs one fetcher
// goroutine that pulls raw batches from the leader (ReplicaFetch, a long
// poll) and appends them unchanged (same offsets, epochs and CRCs). The
// offset a follower fetches from tells the leader how far it has the log;
// the high watermark is the smallest such offset over the ISR (the
// leader's own counting only what it has fsynced under flush=always), and
// consumers read only below it. acks=all answers once the high watermark
// passes the batch.
//
// Leader epochs fence deposed leaders: a follower's fetch carries the epoch
// it follows, and a leader answers an older epoch with FENCED_LEADER_EPOCH
// and a newer one with UNKNOWN_LEADER_EPOCH. A node that becomes a follower
// first asks the leader where its own last epoch ends (LeaderEpochEnd,
// Kafka's OffsetsForLeaderEpoch) and truncates what diverged (KIP-101/279)
// before it fetches.
//
// Lock order: Broker.mu, then Partition.mu, then Broker.linkMu (a leaf).
// A Partition's replication state is guarded by its mu; no network call is
// made while holding it.

// ReplicaClient is how followers reach leaders; package transport
// implements it over QUIC.
type ReplicaClient interface {
	ReplicaFetch(ctx context.Context, leader int32, req ReplicaFetchRequest) (ReplicaFetchResponse, error)
	// LeaderEpochEnd asks the leader for the largest epoch <= epoch in its
	// log and the offset where that epoch ends (its end offset when it is
	// the current epoch).
	LeaderEpochEnd(ctx context.Context, leader int32, topic string, partition, epoch int32) (leaderEpoch int32, endOffset int64, err error)
}

// ReplicaFetchRequest is a follower's fetch.
type ReplicaFetchRequest struct {
	Topic       string
	Partition   int32
	ReplicaID   int32
	LeaderEpoch int32 // the epoch the follower follows
	Offset      int64 // the follower's end offset: it has everything below
	MaxBytes    int32
	MaxWait     time.Duration // wait this long for data when there is none
}

// ReplicaFetchResponse carries raw batches from Offset up to the leader's
// end offset (not only below the high watermark).
type ReplicaFetchResponse struct {
	Batches        []byte
	HighWatermark  int64
	LogStartOffset int64
	EndOffset      int64
}

// epochStart is one entry of a partition's leader-epoch cache: the first
// offset written under an epoch.
type epochStart struct {
	epoch int32
	start int64
}

// follower is what a leader knows of one follower.
type follower struct {
	leo          int64     // fetch offset of its last fetch; -1 before the first
	lastFetchLEO int64     // the leader's end offset at that fetch
	lastFetch    time.Time // when it last fetched
	caughtUp     time.Time // last time it was known to have the whole log
}

// replicaState is a clustered partition's replication state.
type replicaState struct {
	self     int32
	leader   int32 // -1: unknown or offline
	epoch    int32
	replicas []int32
	isr      []int32
	minISR   int
	hw       int64
	// leaderSince is when this node became leader (followers that never
	// fetched count as caught up at that time).
	leaderSince time.Time
	followers   map[int32]*follower
	// changed is closed (and replaced) when the high watermark, the role or
	// the ISR changes: acks=all waiters and consumers' long polls wait on it.
	changed chan struct{}
	// fetchGen grows with every leader change; a fetcher of an older
	// generation stops instead of appending.
	fetchGen    int
	fetchCancel context.CancelFunc
	alterBusy   bool // an AlterISR is in flight
}

func newReplicaState(self int32) *replicaState {
	return &replicaState{self: self, leader: -1, epoch: -1, changed: make(chan struct{}), followers: map[int32]*follower{}}
}

func (r *replicaState) isLeader() bool { return r.leader == r.self && r.leader >= 0 }

// wakeLocked wakes everything waiting on changed; p.mu must be held.
func (r *replicaState) wakeLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// localEndLocked is how far this replica has the log for the high
// watermark: what is fsynced under flush=always, else what is written.
func (p *Partition) localEndLocked() int64 {
	if p.always {
		return p.log.DurableOffset()
	}
	return p.log.EndOffset()
}

// advanceHWLocked moves the leader's high watermark to the smallest end
// offset over the ISR; it never moves back. It reports whether it moved.
func (p *Partition) advanceHWLocked() bool {
	r := p.repl
	if !r.isLeader() {
		return false
	}
	c := p.localEndLocked()
	for _, id := range r.isr {
		if id == r.self {
			continue
		}
		f := r.followers[id]
		if f == nil || f.leo < 0 {
			// An ISR member that has not fetched from this leader yet
			// holds the watermark where it is.
			c = min(c, r.hw)
			continue
		}
		c = min(c, f.leo)
	}
	if c > r.hw {
		r.hw = c
		r.wakeLocked()
		return true
	}
	return false
}

// observeEpochLocked extends the leader-epoch cache with a batch header.
func (p *Partition) observeEpochLocked(h batch.Header) {
	if n := len(p.epochs); n == 0 || h.LeaderEpoch > p.epochs[n-1].epoch {
		p.epochs = append(p.epochs, epochStart{epoch: h.LeaderEpoch, start: h.BaseOffset})
	}
}

// epochEndLocked returns the largest cached epoch <= epoch and the offset
// where it ends: the start of the next epoch, or the log end.
func (p *Partition) epochEndLocked(epoch int32) (int32, int64) {
	i := -1
	for j, e := range p.epochs {
		if e.epoch <= epoch {
			i = j
		}
	}
	if i < 0 {
		if len(p.epochs) > 0 {
			return -1, p.epochs[0].start
		}
		return -1, p.log.EndOffset()
	}
	if i+1 < len(p.epochs) {
		return p.epochs[i].epoch, p.epochs[i+1].start
	}
	return p.epochs[i].epoch, p.log.EndOffset()
}

// truncateLocked cuts the log at offset and forgets what was cut: epochs,
// producer state and the high watermark.
func (p *Partition) truncateLocked(offset int64) error {
	if err := p.log.Truncate(offset); err != nil {
		return err
	}
	end := p.log.EndOffset()
	for len(p.epochs) > 0 && p.epochs[len(p.epochs)-1].start >= end {
		p.epochs = p.epochs[:len(p.epochs)-1]
	}
	if p.repl != nil && p.repl.hw > end {
		p.repl.hw = end
	}
	clear(p.producers)
	return p.log.ScanHeaders(p.log.StartOffset(), func(h batch.Header) error {
		p.observeLocked(h)
		return nil
	})
}

// setAssignment applies the cluster's decision about this partition. It
// returns true when this node must (re)start its fetcher: it became a
// follower of a new leader or epoch.
func (p *Partition) setAssignment(a PartitionAssignment, minISR int) (startFetcher bool, gen int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.repl
	r.replicas, r.isr, r.minISR = slices.Clone(a.Replicas), slices.Clone(a.ISR), minISR
	if a.Leader != r.leader || a.LeaderEpoch != r.epoch {
		r.leader, r.epoch = a.Leader, a.LeaderEpoch
		r.fetchGen++
		if r.fetchCancel != nil {
			r.fetchCancel()
			r.fetchCancel = nil
		}
		r.followers = map[int32]*follower{}
		if r.isLeader() {
			r.leaderSince = time.Now()
			// The new epoch starts at the current end, even before its
			// first batch, so followers asking where their epoch ends get
			// the right answer.
			if n := len(p.epochs); n == 0 || p.epochs[n-1].epoch < r.epoch {
				p.epochs = append(p.epochs, epochStart{epoch: r.epoch, start: p.log.EndOffset()})
			}
		} else if r.leader >= 0 {
			startFetcher = true
		}
	}
	p.advanceHWLocked()
	r.wakeLocked()
	return startFetcher, r.fetchGen
}

// checkLeaderLocked fails unless this node leads the partition.
func (p *Partition) checkLeaderLocked() error {
	if r := p.repl; r != nil && !r.isLeader() {
		if r.leader < 0 {
			return fmt.Errorf("%w: %s/%d has no leader", kerr.LeaderNotAvailable, p.topic, p.index)
		}
		return fmt.Errorf("%w: %s/%d is led by node %d", kerr.NotLeaderForPartition, p.topic, p.index, r.leader)
	}
	return nil
}

// waitHW waits until the high watermark passes offset while this node
// leads the partition at epoch.
func (p *Partition) waitHW(ctx context.Context, offset int64, epoch int32) error {
	for {
		p.mu.Lock()
		r := p.repl
		if !r.isLeader() || r.epoch != epoch {
			p.mu.Unlock()
			return fmt.Errorf("%w: %s/%d: leadership moved while waiting for replicas", kerr.NotLeaderForPartition, p.topic, p.index)
		}
		p.advanceHWLocked()
		if r.hw >= offset {
			// The ISR may have shrunk under the minimum while waiting (the
			// watermark then moved with fewer copies): Kafka's
			// NOT_ENOUGH_REPLICAS_AFTER_APPEND, retriable.
			n, need := len(r.isr), r.minISR
			p.mu.Unlock()
			if n < need {
				return fmt.Errorf("%w: %s/%d has %d in-sync replicas, min.insync.replicas is %d",
					kerr.NotEnoughReplicasAfterAppend, p.topic, p.index, n, need)
			}
			return nil
		}
		ch := r.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for in-sync replicas: %v", kerr.RequestTimedOut, ctx.Err())
		}
	}
}

// ReplicaFetch serves a follower's fetch on the leader.
func (b *Broker) ReplicaFetch(ctx context.Context, req ReplicaFetchRequest) (ReplicaFetchResponse, error) {
	p, err := b.Partition(req.Topic, req.Partition)
	if err != nil {
		return ReplicaFetchResponse{}, err
	}
	p.mu.Lock()
	r := p.repl
	if r == nil {
		p.mu.Unlock()
		return ReplicaFetchResponse{}, fmt.Errorf("%w: not clustered", kerr.NotLeaderForPartition)
	}
	if err := p.checkLeaderLocked(); err != nil {
		p.mu.Unlock()
		return ReplicaFetchResponse{}, err
	}
	switch {
	case req.LeaderEpoch < r.epoch:
		p.mu.Unlock()
		return ReplicaFetchResponse{}, fmt.Errorf("%w: follower at epoch %d, leader at %d", kerr.FencedLeaderEpoch, req.LeaderEpoch, r.epoch)
	case req.LeaderEpoch > r.epoch:
		p.mu.Unlock()
		return ReplicaFetchResponse{}, fmt.Errorf("%w: follower at epoch %d, leader at %d", kerr.UnknownLeaderEpoch, req.LeaderEpoch, r.epoch)
	case !slices.Contains(r.replicas, req.ReplicaID) || req.ReplicaID == r.self:
		p.mu.Unlock()
		return ReplicaFetchResponse{}, fmt.Errorf("%w: node %d is not a replica of %s/%d", kerr.NotLeaderForPartition, req.ReplicaID, p.topic, p.index)
	}
	leo := p.log.EndOffset()
	if req.Offset > leo || req.Offset < p.log.StartOffset() && req.Offset != leo {
		p.mu.Unlock()
		return ReplicaFetchResponse{LogStartOffset: p.log.StartOffset(), EndOffset: leo},
			fmt.Errorf("%w: follower offset %d not in [%d, %d]", kerr.OffsetOutOfRange, req.Offset, p.log.StartOffset(), leo)
	}
	now := time.Now()
	f := r.followers[req.ReplicaID]
	if f == nil {
		f = &follower{leo: -1, caughtUp: r.leaderSince}
		r.followers[req.ReplicaID] = f
	}
	// Kafka's rule: a follower is caught up when it fetches from at least
	// the end the leader had at its previous fetch (under steady load it
	// is never exactly at the end).
	if req.Offset >= f.lastFetchLEO && f.leo >= 0 {
		f.caughtUp = f.lastFetch
	}
	if req.Offset >= leo {
		f.caughtUp = now
	}
	f.leo, f.lastFetchLEO, f.lastFetch = req.Offset, leo, now
	p.advanceHWLocked()
	if !slices.Contains(r.isr, req.ReplicaID) && req.Offset >= r.hw && req.Offset >= p.currentEpochStartLocked() {
		b.alterISRLocked(p, append(slices.Clone(r.isr), req.ReplicaID))
	}
	notify := p.log.Notify()
	epoch := r.epoch
	p.mu.Unlock()

	if req.Offset >= leo && req.MaxWait > 0 {
		t := time.NewTimer(req.MaxWait)
		select {
		case <-notify:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	maxBytes := int(req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	p.mu.Lock()
	if !r.isLeader() || r.epoch != epoch {
		p.mu.Unlock()
		return ReplicaFetchResponse{}, fmt.Errorf("%w: leadership moved", kerr.NotLeaderForPartition)
	}
	res := ReplicaFetchResponse{HighWatermark: r.hw, LogStartOffset: p.log.StartOffset(), EndOffset: p.log.EndOffset()}
	p.mu.Unlock()
	if req.Offset < res.EndOffset {
		data, err := p.log.Read(req.Offset, maxBytes, res.EndOffset)
		if err != nil {
			return res, err
		}
		res.Batches = data
	}
	return res, nil
}

// currentEpochStartLocked is where the leader's current epoch began.
func (p *Partition) currentEpochStartLocked() int64 {
	if n := len(p.epochs); n > 0 && p.epochs[n-1].epoch == p.repl.epoch {
		return p.epochs[n-1].start
	}
	return p.log.EndOffset()
}

// LeaderEpochEnd answers a follower's question on the leader: where does
// the follower's last epoch end in the leader's log?
func (b *Broker) LeaderEpochEnd(topicName string, partition, epoch int32) (int32, int64, error) {
	p, err := b.Partition(topicName, partition)
	if err != nil {
		return -1, -1, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.repl == nil {
		return -1, -1, fmt.Errorf("%w: not clustered", kerr.NotLeaderForPartition)
	}
	if err := p.checkLeaderLocked(); err != nil {
		return -1, -1, err
	}
	if epoch == p.repl.epoch {
		return epoch, p.log.EndOffset(), nil
	}
	le, end := p.epochEndLocked(epoch)
	return le, end, nil
}

// alterISRLocked asks the controller, in the background, to set the ISR of
// a partition this node leads; one request per partition at a time. The
// answer comes back through ApplyTopic. p.mu must be held.
func (b *Broker) alterISRLocked(p *Partition, isr []int32) {
	r := p.repl
	b.linkMu.RLock()
	c := b.cluster
	b.linkMu.RUnlock()
	if r.alterBusy || c == nil || b.ctx.Err() != nil {
		return
	}
	r.alterBusy = true
	epoch := r.epoch
	slices.Sort(isr)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		err := c.AlterISR(ctx, p.topic, p.index, epoch, isr)
		cancel()
		if err != nil && b.ctx.Err() == nil {
			b.logger.Warn("alter ISR failed", "topic", p.topic, "partition", p.index, "isr", isr, "err", err)
		}
		p.mu.Lock()
		r.alterBusy = false
		p.mu.Unlock()
	}()
}

// shrinkISRs drops followers that have not caught up within ReplicaLagMax
// from the ISR of every partition this node leads.
func (b *Broker) shrinkISRs(now time.Time) {
	for _, p := range b.partitions() {
		p.mu.Lock()
		r := p.repl
		if r == nil || !r.isLeader() {
			p.mu.Unlock()
			continue
		}
		keep := make([]int32, 0, len(r.isr))
		for _, id := range r.isr {
			if id != r.self {
				caught := r.leaderSince
				if f := r.followers[id]; f != nil && f.caughtUp.After(caught) {
					caught = f.caughtUp
				}
				if now.Sub(caught) > b.cfg.ReplicaLagMax {
					b.logger.Info("follower fell out of sync", "topic", p.topic, "partition", p.index, "node", id,
						"behind", now.Sub(caught).Round(time.Millisecond))
					continue
				}
			}
			keep = append(keep, id)
		}
		if len(keep) < len(r.isr) {
			b.alterISRLocked(p, keep)
		}
		p.mu.Unlock()
	}
}

// errStaleFetcher stops a fetcher whose leader changed.
var errStaleFetcher = errors.New("bus: stale fetcher")

// startFetcher runs the partition's fetcher for generation gen.
func (b *Broker) startFetcher(p *Partition, gen int) {
	b.linkMu.RLock()
	rc := b.replicas
	b.linkMu.RUnlock()
	if rc == nil || b.ctx.Err() != nil {
		return // SetCluster starts it
	}
	ctx, cancel := context.WithCancel(b.ctx)
	p.mu.Lock()
	r := p.repl
	if r.fetchGen != gen || r.isLeader() || r.leader < 0 {
		p.mu.Unlock()
		cancel()
		return
	}
	if r.fetchCancel != nil {
		r.fetchCancel()
	}
	r.fetchCancel = cancel
	leader, epoch := r.leader, r.epoch
	p.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer cancel()
		b.runFetcher(ctx, rc, p, gen, leader, epoch)
	}()
}

func (b *Broker) runFetcher(ctx context.Context, rc ReplicaClient, p *Partition, gen int, leader, epoch int32) {
	log := b.logger.With("topic", p.topic, "partition", p.index, "leader", leader, "epoch", epoch)
	backoff := func(d *time.Duration) bool {
		t := time.NewTimer(*d)
		defer t.Stop()
		*d = min(2**d, time.Second)
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	wait := 50 * time.Millisecond
	truncated := false
	for ctx.Err() == nil {
		if !truncated {
			err := b.truncateToLeader(ctx, rc, p, gen, leader)
			if errors.Is(err, errStaleFetcher) {
				return
			}
			if err != nil {
				log.Debug("leader epoch lookup failed", "err", err)
				if !backoff(&wait) {
					return
				}
				continue
			}
			truncated = true
		}
		p.mu.Lock()
		if p.repl.fetchGen != gen {
			p.mu.Unlock()
			return
		}
		offset := p.log.EndOffset()
		p.mu.Unlock()
		resp, err := rc.ReplicaFetch(ctx, leader, ReplicaFetchRequest{Topic: p.topic, Partition: p.index,
			ReplicaID: b.cfg.NodeID, LeaderEpoch: epoch, Offset: offset, MaxBytes: 1 << 20, MaxWait: b.cfg.ReplicaFetchWait})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, kerr.OffsetOutOfRange) {
				truncated = false
				if resp.EndOffset >= 0 && offset < resp.LogStartOffset {
					// The leader no longer has what this follower needs
					// next (retention): start over at the leader's start.
					p.mu.Lock()
					if p.repl.fetchGen == gen {
						log.Warn("follower behind the leader's log start; restarting the log", "from", offset, "to", resp.LogStartOffset)
						if err := p.truncateLocked(resp.LogStartOffset); err != nil {
							log.Error("restart log", "err", err)
						}
					}
					p.mu.Unlock()
					truncated = true
				}
			}
			log.Debug("replica fetch failed", "err", err)
			if !backoff(&wait) {
				return
			}
			continue
		}
		wait = 50 * time.Millisecond
		if err := b.appendFetched(ctx, p, gen, resp); err != nil {
			if errors.Is(err, errStaleFetcher) || ctx.Err() != nil {
				return
			}
			log.Warn("replica append failed", "err", err)
			truncated = false
			if !backoff(&wait) {
				return
			}
		}
	}
}

// truncateToLeader cuts what this follower's log has beyond the point where
// it diverged from the leader's (KIP-279): the leader says where the
// follower's last epoch ends in its log; if the leader does not have that
// epoch it names an older one, whose end in both logs bounds what is kept.
func (b *Broker) truncateToLeader(ctx context.Context, rc ReplicaClient, p *Partition, gen int, leader int32) error {
	p.mu.Lock()
	if p.repl.fetchGen != gen {
		p.mu.Unlock()
		return errStaleFetcher
	}
	if len(p.epochs) == 0 {
		p.mu.Unlock()
		return nil // nothing written, nothing to cut
	}
	last := p.epochs[len(p.epochs)-1].epoch
	p.mu.Unlock()
	le, end, err := rc.LeaderEpochEnd(ctx, leader, p.topic, p.index, last)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.repl.fetchGen != gen {
		return errStaleFetcher
	}
	to := end
	if le != last {
		_, mine := p.epochEndLocked(le)
		if le < 0 {
			mine = end
		}
		to = min(end, mine)
	}
	if to >= p.log.EndOffset() {
		return nil
	}
	b.logger.Warn("truncating a diverged log to follow the new leader", "topic", p.topic, "partition", p.index,
		"from", p.log.EndOffset(), "to", to, "leader", leader, "epoch", p.repl.epoch)
	return p.truncateLocked(to)
}

// appendFetched appends a leader's batches and takes its high watermark.
func (b *Broker) appendFetched(ctx context.Context, p *Partition, gen int, resp ReplicaFetchResponse) error {
	p.mu.Lock()
	if p.repl.fetchGen != gen {
		p.mu.Unlock()
		return errStaleFetcher
	}
	last := int64(-1)
	if len(resp.Batches) > 0 {
		var err error
		if last, err = p.log.AppendReplicated(resp.Batches); err != nil {
			p.mu.Unlock()
			return err
		}
		records := int64(0)
		_ = batch.Each(resp.Batches, func(h batch.Header, _ []byte) error {
			p.observeLocked(h)
			p.observeEpochLocked(h)
			records += int64(h.NumRecords)
			return nil
		})
		p.recordsIn.Add(records)
		p.bytesIn.Add(int64(len(resp.Batches)))
	}
	always := p.always
	p.mu.Unlock()
	if always && last >= 0 {
		// The next fetch offset tells the leader this replica has the
		// batches; under flush=always that must mean on disk.
		if err := p.log.Sync(ctx, last+1); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.repl.fetchGen != gen {
		return errStaleFetcher
	}
	if hw := min(resp.HighWatermark, p.localEndLocked()); hw > p.repl.hw {
		p.repl.hw = hw
		p.repl.wakeLocked()
	}
	return nil
}
