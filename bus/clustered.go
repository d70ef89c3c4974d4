package bus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus/group"
	"github.com/wispbus/wisp/internal/batch"
)

// pidBlockCluster is how many producer ids a clustered broker reserves from
// the metadata at a time.
const pidBlockCluster = 1000

func (b *Broker) partitionDir(topicName string, p int32) string {
	return filepath.Join(b.topicDir(topicName), strconv.Itoa(int(p)))
}

// SetCluster connects a clustered broker to the metadata and to the
// leaders it follows; fetchers of partitions it follows start now. Call it
// once, after the metadata has started (ApplyTopic may run before).
func (b *Broker) SetCluster(c Cluster, rc ReplicaClient) {
	b.linkMu.Lock()
	b.cluster, b.replicas = c, rc
	b.linkMu.Unlock()
	b.wg.Add(1)
	go b.ensureOffsetsTopic()
	for _, p := range b.partitions() {
		p.mu.Lock()
		r := p.repl
		start := r != nil && !r.isLeader() && r.leader >= 0 && r.fetchCancel == nil
		gen := 0
		if r != nil {
			gen = r.fetchGen
		}
		p.mu.Unlock()
		if start {
			b.startFetcher(p, gen)
		}
	}
}

func (b *Broker) clusterOrErr() (Cluster, error) {
	if b.ctx.Err() != nil {
		return nil, ErrClosed
	}
	b.linkMu.RLock()
	defer b.linkMu.RUnlock()
	if b.cluster == nil {
		return nil, fmt.Errorf("%w: the cluster metadata is not ready yet", kerr.NotController)
	}
	return b.cluster, nil
}

// partitions lists every local partition.
func (b *Broker) partitions() []*Partition {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []*Partition
	for _, t := range b.topics {
		for _, p := range t.parts {
			if p != nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// createClustered validates a topic and has the controller place and
// commit it; the topic exists locally once ApplyTopic ran for it.
func (b *Broker) createClustered(ctx context.Context, spec TopicSpec) (TopicInfo, error) {
	c, err := b.clusterOrErr()
	if err != nil {
		return TopicInfo{}, err
	}
	if spec.Partitions <= 0 {
		spec.Partitions = b.cfg.DefaultPartitions
	}
	if spec.Partitions > 10000 {
		return TopicInfo{}, fmt.Errorf("%w: %d partitions (max 10000)", kerr.InvalidPartitions, spec.Partitions)
	}
	if spec.ReplicationFactor <= 0 {
		spec.ReplicationFactor = 1
	}
	if _, err := topicLogConfig(b.cfg.TopicDefaults, spec.Configs); err != nil {
		return TopicInfo{}, err
	}
	// A replicated topic acknowledges acks=all writes only while two
	// replicas have them, unless the user says otherwise.
	_, inTopic := spec.Configs[ConfigMinInsyncReplicas]
	_, inBroker := b.cfg.TopicDefaults[ConfigMinInsyncReplicas]
	if spec.ReplicationFactor > 1 && !inTopic && !inBroker {
		spec.Configs = cloneMap(spec.Configs)
		spec.Configs[ConfigMinInsyncReplicas] = strconv.Itoa(min(2, int(spec.ReplicationFactor)))
	}
	if err := c.CreateTopic(ctx, spec); err != nil {
		return TopicInfo{}, err
	}
	return b.Topic(spec.Name)
}

// clusterProducerID hands out producer ids from blocks reserved in the
// cluster metadata, so no two nodes ever give out the same id.
func (b *Broker) clusterProducerID(ctx context.Context) (int64, int16, error) {
	b.pidMu.Lock()
	defer b.pidMu.Unlock()
	if b.pidNext >= b.pidEnd {
		c, err := b.clusterOrErr()
		if err != nil {
			return 0, 0, err
		}
		first, err := c.AllocateProducerIDs(ctx, pidBlockCluster)
		if err != nil {
			return 0, 0, err
		}
		b.pidNext, b.pidEnd = first, first+pidBlockCluster
	}
	id := b.pidNext
	b.pidNext++
	return id, 0, nil
}

// ApplyTopic makes this node's copy of a topic match the cluster's
// decision: it creates the replicas assigned here, applies configs, and
// takes each partition's leader, epoch and ISR (becoming leader, or
// following the new leader after truncating what diverged). It is called by
// the metadata state machine in log order and is idempotent.
func (b *Broker) ApplyTopic(ts TopicState) error {
	if !b.cfg.Clustered {
		return errors.New("bus: ApplyTopic on a broker that is not clustered")
	}
	lc, err := topicLogConfig(b.cfg.TopicDefaults, ts.Configs)
	if err != nil {
		return fmt.Errorf("bus: topic %s: %w", ts.Name, err)
	}
	eff := effectiveConfigs(b.cfg.TopicDefaults, ts.Configs)
	minISR, _ := strconv.Atoi(eff[ConfigMinInsyncReplicas])
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	t := b.topics[ts.Name]
	if t != nil && t.meta.ID != ts.ID {
		// Deleted and created again while this node was away.
		b.mu.Unlock()
		if err := b.deleteLocal(ts.Name); err != nil {
			return err
		}
		b.mu.Lock()
		t = nil
	}
	m := topicMeta{Name: ts.Name, ID: ts.ID, Partitions: int32(len(ts.Partitions)),
		ReplicationFactor: ts.ReplicationFactor, Configs: cloneMap(ts.Configs), Created: time.Now().UTC()}
	if t == nil {
		if err := os.MkdirAll(b.topicDir(ts.Name), 0o755); err != nil {
			b.mu.Unlock()
			return fmt.Errorf("bus: %w", err)
		}
		t = &topic{meta: m, logCfg: lc}
		b.topics[ts.Name] = t
		b.logger.Info("topic created", "topic", ts.Name, "partitions", len(ts.Partitions), "replication", ts.ReplicationFactor)
	} else {
		m.Created = t.meta.Created
	}
	t.meta, t.logCfg = m, lc
	t.appendTime = eff[ConfigTimestampType] == "LogAppendTime"
	if err := b.applyLogConfigLocked(t, lc); err != nil {
		b.mu.Unlock()
		return err
	}
	state := ts
	state.Configs = cloneMap(ts.Configs)
	state.Partitions = slices.Clone(ts.Partitions)
	t.state = &state
	type change struct {
		p   *Partition
		gen int
	}
	var fetch []change
	var firstErr error
	for _, a := range ts.Partitions {
		for int(a.Partition) >= len(t.parts) {
			t.parts = append(t.parts, nil)
		}
		p := t.parts[a.Partition]
		if p == nil {
			if !slices.Contains(a.Replicas, b.cfg.NodeID) {
				continue
			}
			if p, err = b.openPartition(t, a.Partition); err != nil {
				firstErr = cmpErr(firstErr, err)
				continue
			}
			t.parts[a.Partition] = p
		}
		prevLeader, prevEpoch := p.leaderEpoch()
		if start, gen := p.setAssignment(a, max(1, minISR)); start {
			fetch = append(fetch, change{p, gen})
		}
		if ts.Name == OffsetsTopic && a.Partition == 0 && a.Leader == b.cfg.NodeID &&
			(prevLeader != a.Leader || prevEpoch != a.LeaderEpoch) {
			b.wg.Add(1)
			go b.restoreOffsets(p, a.LeaderEpoch)
		}
	}
	// topic.json marks the directory as a real topic across restarts; the
	// metadata log is the truth and is replayed over it.
	if err := writeFileAtomic(filepath.Join(b.topicDir(ts.Name), "topic.json"), mustJSON(m)); err != nil {
		firstErr = cmpErr(firstErr, fmt.Errorf("bus: %w", err))
	}
	b.mu.Unlock()
	for _, c := range fetch {
		b.startFetcher(c.p, c.gen)
	}
	return firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// ApplyTopicDeleted removes a topic the cluster deleted. Deleting a topic
// this node does not have is not an error.
func (b *Broker) ApplyTopicDeleted(name string) error {
	err := b.deleteLocal(name)
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil
	}
	return err
}

// stopFetcher stops the partition's fetcher, if any.
func (p *Partition) stopFetcher() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r := p.repl; r != nil {
		r.fetchGen++
		if r.fetchCancel != nil {
			r.fetchCancel()
			r.fetchCancel = nil
		}
	}
}

// clusteredInfo describes a clustered topic's partitions: placement from
// the metadata, offsets from the local replica where there is one.
func clusteredInfo(t *topic) []PartitionInfo {
	var out []PartitionInfo
	n := len(t.parts)
	if t.state != nil {
		n = max(n, len(t.state.Partitions))
	}
	for i := 0; i < n; i++ {
		pi := PartitionInfo{Partition: int32(i), Leader: -1, LeaderEpoch: -1}
		if t.state != nil && i < len(t.state.Partitions) {
			a := t.state.Partitions[i]
			pi.Leader, pi.LeaderEpoch = a.Leader, a.LeaderEpoch
			pi.Replicas, pi.ISR = slices.Clone(a.Replicas), slices.Clone(a.ISR)
		}
		if i < len(t.parts) && t.parts[i] != nil {
			p := t.parts[i]
			pi.LogStartOffset, pi.HighWatermark, pi.EndOffset = p.log.StartOffset(), p.HighWatermark(), p.log.EndOffset()
			pi.SizeBytes, pi.Stats = p.log.Size(), p.stats()
		}
		out = append(out, pi)
	}
	return out
}

// watchISRs shrinks the ISRs of led partitions whose followers lag.
func (b *Broker) watchISRs() {
	defer b.wg.Done()
	t := time.NewTicker(max(b.cfg.ReplicaLagMax/4, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-t.C:
			b.shrinkISRs(now)
		}
	}
}

// Nodes lists the cluster's nodes; on a single node, only this one (with
// no addresses: the frontends know their own).
func (b *Broker) Nodes() []NodeInfo {
	b.linkMu.RLock()
	c := b.cluster
	b.linkMu.RUnlock()
	if c == nil {
		return []NodeInfo{{ID: b.cfg.NodeID, Alive: true}}
	}
	return c.Nodes()
}

// ControllerID is the node leading the cluster metadata (this node on a
// single node; -1 while there is none).
func (b *Broker) ControllerID() int32 {
	if !b.cfg.Clustered {
		return b.cfg.NodeID
	}
	b.linkMu.RLock()
	c := b.cluster
	b.linkMu.RUnlock()
	if c == nil {
		return -1
	}
	return c.ControllerID()
}

// GroupCoordinator is the node that coordinates consumer groups: this one
// on a single node; in a cluster the leader of OffsetsTopic, -1 while there
// is none ready.
func (b *Broker) GroupCoordinator(group string) int32 {
	if !b.cfg.Clustered {
		return b.cfg.NodeID
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.coordinatorLocked()
}

// OffsetsTopic is the internal, replicated and compacted topic of a
// clustered broker that holds every consumer group's committed offsets
// (Kafka's __consumer_offsets, one partition). The leader of its partition
// coordinates every group: it rebuilds the offsets from the partition when
// it becomes leader and appends each commit to it with acks=all before
// answering, so committed offsets survive the loss of any node.
const OffsetsTopic = "__wisp_offsets"

// coordinatorLocked is the node coordinating groups in a cluster, -1 while
// there is none (or this node leads but has not finished restoring the
// offsets). b.mu must be held.
func (b *Broker) coordinatorLocked() int32 {
	t := b.topics[OffsetsTopic]
	if t == nil || t.state == nil || len(t.state.Partitions) == 0 {
		return -1
	}
	a := t.state.Partitions[0]
	if a.Leader == b.cfg.NodeID && b.offsetsEpoch != a.LeaderEpoch {
		return -1
	}
	return a.Leader
}

// replicateOffsets appends a group commit's records to OffsetsTopic and
// waits for the in-sync replicas.
func (b *Broker) replicateOffsets(entries []group.Entry) error {
	b.mu.RLock()
	coord := b.coordinatorLocked()
	b.mu.RUnlock()
	if coord != b.cfg.NodeID {
		return fmt.Errorf("%w: node %d coordinates groups", kerr.NotCoordinator, coord)
	}
	now := time.Now().UnixMilli()
	recs := make([]batch.Record, len(entries))
	for i, e := range entries {
		recs[i] = batch.Record{Key: e.Key, Value: e.Value, Timestamp: now}
	}
	raw, err := batch.Build(batch.NoProducer, recs)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if _, err := b.Produce(ctx, OffsetsTopic, 0, raw, AcksAll); err != nil {
		if errors.Is(err, kerr.NotLeaderForPartition) || errors.Is(err, kerr.LeaderNotAvailable) {
			return fmt.Errorf("%w: %v", kerr.NotCoordinator, err)
		}
		return fmt.Errorf("%w: replicate offsets: %v", kerr.CoordinatorNotAvailable, err)
	}
	return nil
}

// restoreOffsets rebuilds the committed offsets from this node's replica of
// OffsetsTopic after it became its leader at epoch, then starts
// coordinating.
func (b *Broker) restoreOffsets(p *Partition, epoch int32) {
	defer b.wg.Done()
	var values [][]byte
	err := func() error {
		for off, end := p.log.StartOffset(), p.log.EndOffset(); off < end; {
			data, err := p.log.Read(off, 4<<20, end)
			if err != nil {
				return err
			}
			if len(data) == 0 {
				return nil
			}
			err = batch.Each(data, func(h batch.Header, raw []byte) error {
				recs, err := batch.Records(raw)
				if err != nil {
					return err
				}
				for _, r := range recs {
					if r.Offset >= off && r.Value != nil {
						values = append(values, r.Value)
					}
				}
				off = h.NextOffset()
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	}()
	if err == nil {
		err = b.groups.Restore(values)
	}
	if err != nil {
		b.logger.Error("restoring committed offsets failed; groups stay unavailable on this node", "err", err)
		return
	}
	b.mu.Lock()
	b.offsetsEpoch = epoch
	b.mu.Unlock()
	b.logger.Info("coordinating consumer groups", "records", len(values), "epoch", epoch)
}

// ensureOffsetsTopic creates OffsetsTopic once the cluster can.
func (b *Broker) ensureOffsetsTopic() {
	defer b.wg.Done()
	for {
		if _, err := b.Topic(OffsetsTopic); err == nil {
			return
		}
		alive := 0
		for _, n := range b.Nodes() {
			if n.Alive {
				alive++
			}
		}
		if want := max(1, int(b.cfg.OffsetsReplicas)); alive >= want {
			ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
			_, err := b.CreateTopic(ctx, TopicSpec{Name: OffsetsTopic, Partitions: 1,
				ReplicationFactor: int16(want),
				Configs:           map[string]string{ConfigCleanupPolicy: "compact"}})
			cancel()
			if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
				return
			}
			b.logger.Debug("creating the offsets topic", "err", err)
		}
		select {
		case <-b.stop:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// leaderEpoch is the partition's leader and epoch as last applied.
func (p *Partition) leaderEpoch() (int32, int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.repl == nil {
		return -1, -1
	}
	return p.repl.leader, p.repl.epoch
}
