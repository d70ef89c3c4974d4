package bus

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus/group"
	wlog "github.com/wispbus/wisp/bus/log"
)

// ErrClosed is returned by calls on a closed Broker.
var ErrClosed = errors.New("bus: broker closed")

// Broker is one node's broker core. It is safe for concurrent use.
type Broker struct {
	cfg    Config
	logger *slog.Logger
	groups *group.Coordinator
	pids   *pidAllocator

	mu     sync.RWMutex // guards topics and closed
	topics map[string]*topic
	closed bool

	// Clustered brokers only: the metadata and the follower links, set by
	// SetCluster (guarded by linkMu, a leaf lock: partitions read them
	// while holding their own mu), and producer ids reserved from the
	// cluster.
	linkMu   sync.RWMutex
	cluster  Cluster
	replicas ReplicaClient
	pidMu    sync.Mutex
	pidNext  int64
	pidEnd   int64
	// offsetsEpoch is the OffsetsTopic leader epoch whose offsets this
	// node restored (guarded by mu); see coordinatorLocked.
	offsetsEpoch int32

	ctx    context.Context // cancelled by Close; parent of every goroutine's context
	cancel context.CancelFunc
	stop   chan struct{}
	wg     sync.WaitGroup
}

type topic struct {
	meta       topicMeta
	logCfg     wlog.Config
	appendTime bool // message.timestamp.type=LogAppendTime
	// parts holds the partitions this node has a replica of; on a
	// clustered broker the others are nil.
	parts []*Partition
	// state is the cluster's view of the topic (clustered brokers only).
	state *TopicState
}

// topicMeta is what topic.json holds.
type topicMeta struct {
	Name              string            `json:"name"`
	ID                [16]byte          `json:"id"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs,omitempty"`
	Created           time.Time         `json:"created"`
}

// Open starts a broker on cfg.DataDir, reloading every topic and recovering
// every partition log.
func Open(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "topics"), 0o755); err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	b := &Broker{cfg: cfg, logger: logger, topics: map[string]*topic{}, stop: make(chan struct{})}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	var err error
	if b.pids, err = openPIDAllocator(filepath.Join(cfg.DataDir, "producer-ids")); err != nil {
		return nil, err
	}
	gcfg := cfg.Group
	if gcfg.Dir == "" {
		gcfg.Dir = filepath.Join(cfg.DataDir, "groups")
	}
	if gcfg.Logger == nil {
		gcfg.Logger = logger
	}
	if cfg.Clustered {
		b.offsetsEpoch = -1
		gcfg.Replicate = b.replicateOffsets
	}
	if b.groups, err = group.Open(gcfg); err != nil {
		return nil, err
	}
	if err := b.loadTopics(); err != nil {
		b.closeTopics()
		b.groups.Close()
		return nil, err
	}
	b.wg.Add(1)
	go b.maintain()
	if cfg.Clustered {
		b.wg.Add(1)
		go b.watchISRs()
	}
	return b, nil
}

func (b *Broker) loadTopics() error {
	root := filepath.Join(b.cfg.DataDir, "topics")
	entries, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		raw, err := os.ReadFile(filepath.Join(dir, "topic.json"))
		if errors.Is(err, os.ErrNotExist) {
			// A create that crashed before its metadata landed, or a delete
			// that crashed half-way: the topic never existed for clients.
			b.logger.Warn("removing topic directory without metadata", "dir", dir)
			_ = os.RemoveAll(dir)
			continue
		}
		if err != nil {
			return fmt.Errorf("bus: %w", err)
		}
		var m topicMeta
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("bus: %s: %w", filepath.Join(dir, "topic.json"), err)
		}
		t, err := b.openTopic(m)
		if err != nil {
			return err
		}
		b.topics[m.Name] = t
	}
	return nil
}

func (b *Broker) topicDir(name string) string {
	return filepath.Join(b.cfg.DataDir, "topics", name)
}

func (b *Broker) openTopic(m topicMeta) (*topic, error) {
	lc, err := topicLogConfig(b.cfg.TopicDefaults, m.Configs)
	if err != nil {
		return nil, fmt.Errorf("bus: topic %s: %w", m.Name, err)
	}
	eff := effectiveConfigs(b.cfg.TopicDefaults, m.Configs)
	t := &topic{meta: m, logCfg: lc, appendTime: eff[ConfigTimestampType] == "LogAppendTime"}
	for p := int32(0); p < m.Partitions; p++ {
		if b.cfg.Clustered {
			// Only replicas this node was assigned have a directory;
			// ApplyTopic creates the others when they are assigned here.
			if _, err := os.Stat(b.partitionDir(m.Name, p)); err != nil {
				t.parts = append(t.parts, nil)
				continue
			}
		}
		part, err := b.openPartition(t, p)
		if err != nil {
			for _, q := range t.parts {
				if q != nil {
					q.log.Close()
				}
			}
			return nil, err
		}
		t.parts = append(t.parts, part)
	}
	return t, nil
}

func (b *Broker) openPartition(t *topic, p int32) (*Partition, error) {
	dir := b.partitionDir(t.meta.Name, p)
	l, err := wlog.Open(dir, t.logCfg, b.logger.With("topic", t.meta.Name, "partition", p))
	if err != nil {
		return nil, fmt.Errorf("bus: open %s/%d: %w", t.meta.Name, p, err)
	}
	part := &Partition{topic: t.meta.Name, index: p, log: l, always: t.logCfg.Flush == wlog.FlushAlways,
		appendTime: t.appendTime, producers: map[int64]*producerState{}}
	if b.cfg.Clustered {
		part.repl = newReplicaState(b.cfg.NodeID)
	}
	if err := part.rebuildProducers(); err != nil {
		l.Close()
		return nil, fmt.Errorf("bus: %s/%d: rebuild producer state: %w", t.meta.Name, p, err)
	}
	return part, nil
}

// Close stops maintenance, flushes and closes every log and the group
// coordinator. It returns once every goroutine of the broker is gone.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	close(b.stop)
	b.wg.Wait()
	err := b.closeTopics()
	if gerr := b.groups.Close(); err == nil {
		err = gerr
	}
	return err
}

func (b *Broker) closeTopics() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var first error
	for _, t := range b.topics {
		for _, p := range t.parts {
			if p == nil {
				continue
			}
			if err := p.log.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// Groups is the consumer-group coordinator shared by every frontend.
func (b *Broker) Groups() *group.Coordinator { return b.groups }

// NodeID is this broker's node id.
func (b *Broker) NodeID() int32 { return b.cfg.NodeID }

// Config returns the broker's configuration.
func (b *Broker) Config() Config { return b.cfg }

// CreateTopic creates a topic and its partition logs. It fails with
// kerr.TopicAlreadyExists, kerr.InvalidTopicException, kerr.InvalidPartitions,
// kerr.InvalidReplicationFactor or kerr.InvalidConfig.
func (b *Broker) CreateTopic(ctx context.Context, spec TopicSpec) (TopicInfo, error) {
	if err := ValidTopicName(spec.Name); err != nil {
		return TopicInfo{}, err
	}
	if b.cfg.Clustered {
		return b.createClustered(ctx, spec)
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
	if spec.ReplicationFactor != 1 {
		return TopicInfo{}, fmt.Errorf("%w: replication factor %d on a single node (only 1 node is available)",
			kerr.InvalidReplicationFactor, spec.ReplicationFactor)
	}
	if _, err := topicLogConfig(b.cfg.TopicDefaults, spec.Configs); err != nil {
		return TopicInfo{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return TopicInfo{}, ErrClosed
	}
	if _, ok := b.topics[spec.Name]; ok {
		return TopicInfo{}, fmt.Errorf("%w: %s", kerr.TopicAlreadyExists, spec.Name)
	}
	m := topicMeta{Name: spec.Name, Partitions: spec.Partitions, ReplicationFactor: spec.ReplicationFactor,
		Configs: cloneMap(spec.Configs), Created: time.Now().UTC()}
	_, _ = rand.Read(m.ID[:])
	t, err := b.openTopic(m)
	if err != nil {
		_ = os.RemoveAll(b.topicDir(spec.Name))
		return TopicInfo{}, err
	}
	// The metadata file lands last: a crash before it leaves a directory
	// that loadTopics removes, never a half-created topic.
	if err := writeFileAtomic(filepath.Join(b.topicDir(spec.Name), "topic.json"), mustJSON(m)); err != nil {
		for _, p := range t.parts {
			p.log.Close()
		}
		_ = os.RemoveAll(b.topicDir(spec.Name))
		return TopicInfo{}, fmt.Errorf("bus: %w", err)
	}
	b.topics[spec.Name] = t
	b.logger.Info("topic created", "topic", spec.Name, "partitions", spec.Partitions)
	return b.infoLocked(t), nil
}

// EnsureTopic returns the topic, creating it with defaults when it does not
// exist and auto-creation is on; otherwise kerr.UnknownTopicOrPartition.
func (b *Broker) EnsureTopic(ctx context.Context, name string) (TopicInfo, error) {
	if info, err := b.Topic(name); err == nil || !b.cfg.AutoCreateTopics {
		return info, err
	}
	info, err := b.CreateTopic(ctx, TopicSpec{Name: name})
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return b.Topic(name)
	}
	return info, err
}

// DeleteTopic removes a topic, its data and its committed offsets.
func (b *Broker) DeleteTopic(ctx context.Context, name string) error {
	if b.cfg.Clustered {
		c, err := b.clusterOrErr()
		if err != nil {
			return err
		}
		return c.DeleteTopic(ctx, name)
	}
	return b.deleteLocal(name)
}

// deleteLocal removes a topic's local data.
func (b *Broker) deleteLocal(name string) error {
	b.mu.Lock()
	t, ok := b.topics[name]
	if !ok {
		b.mu.Unlock()
		return fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, name)
	}
	delete(b.topics, name)
	b.mu.Unlock()
	// Remove the metadata first: a crash after this leaves a directory
	// without topic.json, which the next start removes.
	dir := b.topicDir(name)
	if err := os.Remove(filepath.Join(dir, "topic.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("bus: %w", err)
	}
	for _, p := range t.parts {
		if p == nil {
			continue
		}
		p.markDeleted()
		p.stopFetcher()
		_ = p.log.Delete()
	}
	_ = os.RemoveAll(dir)
	b.groups.DropTopic(name)
	b.logger.Info("topic deleted", "topic", name)
	return nil
}

// AlterTopicConfigs replaces a topic's config overrides (incremental when
// incremental is true: keys in configs are set, keys mapped to "" removed).
func (b *Broker) AlterTopicConfigs(ctx context.Context, name string, configs map[string]string, incremental bool) error {
	if b.cfg.Clustered {
		c, err := b.clusterOrErr()
		if err != nil {
			return err
		}
		if _, err := topicLogConfig(b.cfg.TopicDefaults, configs); err != nil && !incremental {
			return err
		}
		return c.AlterTopicConfigs(ctx, name, configs, incremental)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.topics[name]
	if !ok {
		return fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, name)
	}
	next := map[string]string{}
	if incremental {
		next = cloneMap(t.meta.Configs)
	}
	for k, v := range configs {
		if v == "" && incremental {
			delete(next, k)
			continue
		}
		next[k] = v
	}
	lc, err := topicLogConfig(b.cfg.TopicDefaults, next)
	if err != nil {
		return err
	}
	m := t.meta
	m.Configs = next
	if err := writeFileAtomic(filepath.Join(b.topicDir(name), "topic.json"), mustJSON(m)); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	t.meta, t.logCfg = m, lc
	t.appendTime = effectiveConfigs(b.cfg.TopicDefaults, next)[ConfigTimestampType] == "LogAppendTime"
	return b.applyLogConfigLocked(t, lc)
}

// applyLogConfigLocked gives every local partition of t the config lc;
// b.mu must be held.
func (b *Broker) applyLogConfigLocked(t *topic, lc wlog.Config) error {
	for _, p := range t.parts {
		if p == nil {
			continue
		}
		if err := p.log.SetConfig(lc); err != nil {
			return err
		}
		p.mu.Lock()
		p.always = lc.Flush == wlog.FlushAlways
		p.appendTime = t.appendTime
		p.mu.Unlock()
	}
	return nil
}

// AddPartitions grows a topic to total partitions (Kafka CreatePartitions).
func (b *Broker) AddPartitions(ctx context.Context, name string, total int32) error {
	if b.cfg.Clustered {
		c, err := b.clusterOrErr()
		if err != nil {
			return err
		}
		return c.AddPartitions(ctx, name, total)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.topics[name]
	if !ok {
		return fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, name)
	}
	if total <= t.meta.Partitions || total > 10000 {
		return fmt.Errorf("%w: %s has %d partitions, asked for %d", kerr.InvalidPartitions, name, t.meta.Partitions, total)
	}
	for p := t.meta.Partitions; p < total; p++ {
		part, err := b.openPartition(t, p)
		if err != nil {
			return err
		}
		t.parts = append(t.parts, part)
	}
	m := t.meta
	m.Partitions = total
	if err := writeFileAtomic(filepath.Join(b.topicDir(name), "topic.json"), mustJSON(m)); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	t.meta = m
	return nil
}

// Topics lists every topic, sorted by name.
func (b *Broker) Topics() []TopicInfo {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]TopicInfo, 0, len(b.topics))
	for _, t := range b.topics {
		out = append(out, b.infoLocked(t))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Topic describes one topic or fails with kerr.UnknownTopicOrPartition.
func (b *Broker) Topic(name string) (TopicInfo, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t, ok := b.topics[name]
	if !ok {
		return TopicInfo{}, fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, name)
	}
	return b.infoLocked(t), nil
}

// infoLocked builds a TopicInfo; b.mu must be held (read or write).
func (b *Broker) infoLocked(t *topic) TopicInfo {
	info := TopicInfo{Name: t.meta.Name, ID: t.meta.ID, ReplicationFactor: t.meta.ReplicationFactor,
		Configs: cloneMap(t.meta.Configs), Effective: effectiveConfigs(b.cfg.TopicDefaults, t.meta.Configs)}
	if b.cfg.Clustered {
		info.Partitions = clusteredInfo(t)
		return info
	}
	for _, p := range t.parts {
		info.Partitions = append(info.Partitions, PartitionInfo{
			Partition: p.index, Leader: b.cfg.NodeID, LeaderEpoch: 0,
			Replicas: []int32{b.cfg.NodeID}, ISR: []int32{b.cfg.NodeID},
			LogStartOffset: p.log.StartOffset(), HighWatermark: p.HighWatermark(), EndOffset: p.log.EndOffset(),
			SizeBytes: p.log.Size(), Stats: p.stats(),
		})
	}
	return info
}

// Partition returns one partition of a topic, or kerr.UnknownTopicOrPartition.
func (b *Broker) Partition(topicName string, partition int32) (*Partition, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, ErrClosed
	}
	t, ok := b.topics[topicName]
	if !ok || partition < 0 || int(partition) >= len(t.parts) {
		return nil, fmt.Errorf("%w: %s/%d", kerr.UnknownTopicOrPartition, topicName, partition)
	}
	if t.parts[partition] == nil {
		leader := int32(-1)
		if t.state != nil && int(partition) < len(t.state.Partitions) {
			leader = t.state.Partitions[partition].Leader
		}
		return nil, fmt.Errorf("%w: %s/%d has no replica on node %d (leader %d)", kerr.NotLeaderForPartition,
			topicName, partition, b.cfg.NodeID, leader)
	}
	return t.parts[partition], nil
}

// Produce appends one or more concatenated RecordBatch v2 batches to a
// partition. The buffer is modified in place (offsets) and not kept.
func (b *Broker) Produce(ctx context.Context, topicName string, partition int32, batches []byte, acks Acks) (ProduceResult, error) {
	p, err := b.Partition(topicName, partition)
	if err != nil {
		return ProduceResult{}, err
	}
	return p.Produce(ctx, batches, acks)
}

// Fetch reads whole batches from offset, up to maxBytes (at least one batch
// when any is available), below the high watermark. It does not wait.
func (b *Broker) Fetch(ctx context.Context, topicName string, partition int32, offset int64, maxBytes int32) (FetchResult, error) {
	p, err := b.Partition(topicName, partition)
	if err != nil {
		return FetchResult{}, err
	}
	return p.Fetch(offset, int(maxBytes))
}

// Watch returns a channel closed the next time the partition's high
// watermark or log changes; long-poll fetchers wait on it, then fetch again.
func (b *Broker) Watch(topicName string, partition int32) (<-chan struct{}, error) {
	p, err := b.Partition(topicName, partition)
	if err != nil {
		return nil, err
	}
	if p.repl != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.repl.changed, nil
	}
	return p.log.Notify(), nil
}

// ListOffset resolves Earliest, Latest (the high watermark) or a timestamp
// in ms (the first offset whose timestamp is >= ts; -1 if none) to an
// offset, with the timestamp of the record found (-1 for Earliest/Latest).
func (b *Broker) ListOffset(topicName string, partition int32, ts int64) (offset, timestamp int64, err error) {
	p, err := b.Partition(topicName, partition)
	if err != nil {
		return 0, 0, err
	}
	return p.ListOffset(ts)
}

// InitProducerID allocates a new idempotent producer id with epoch 0.
// Ids are unique for the life of the data directory.
func (b *Broker) InitProducerID(ctx context.Context) (int64, int16, error) {
	if b.cfg.Clustered {
		return b.clusterProducerID(ctx)
	}
	id, err := b.pids.allocate()
	return id, 0, err
}

// maintain runs retention and compaction on every partition.
func (b *Broker) maintain() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.MaintenanceInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-t.C:
			b.RunMaintenance(now)
		}
	}
}

// RunMaintenance applies retention and compaction once to every partition.
// It runs on its own every MaintenanceInterval.
func (b *Broker) RunMaintenance(now time.Time) {
	b.mu.RLock()
	var parts []*Partition
	compact := map[*Partition]bool{}
	for _, t := range b.topics {
		for _, p := range t.parts {
			if p == nil {
				continue
			}
			parts = append(parts, p)
			compact[p] = t.logCfg.Compact
		}
	}
	b.mu.RUnlock()
	for _, p := range parts {
		if p.deleted() {
			continue
		}
		if _, err := p.log.Retain(now); err != nil {
			b.logger.Warn("retention failed", "topic", p.topic, "partition", p.index, "err", err)
		}
		if compact[p] {
			if err := p.log.Compact(now); err != nil {
				b.logger.Warn("compaction failed", "topic", p.topic, "partition", p.index, "err", err)
			}
		}
	}
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// writeFileAtomic writes data to path through a synced temp file and a rename,
// then syncs the directory, so a crash leaves the old or the new file.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
