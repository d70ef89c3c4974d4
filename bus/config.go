package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus/group"
	wlog "github.com/wispbus/wisp/bus/log"
)

// Config configures a Broker. Start from DefaultConfig.
type Config struct {
	// DataDir holds topics, logs, offsets and metadata. Default "./wisp-data".
	DataDir string
	// NodeID is this broker's id in metadata. Default 1.
	NodeID int32
	// DefaultPartitions is used for auto-created topics and for CreateTopic
	// with Partitions <= 0. Default 1.
	DefaultPartitions int32
	// AutoCreateTopics lets EnsureTopic create unknown topics (Kafka's
	// auto.create.topics.enable). Default true.
	AutoCreateTopics bool
	// TopicDefaults are broker-wide defaults for topic configs (Kafka names,
	// e.g. "retention.ms"); a topic's own configs override them.
	TopicDefaults map[string]string
	// MaintenanceInterval is how often retention and compaction run.
	// Default 1 minute.
	MaintenanceInterval time.Duration
	// Group configures the consumer-group coordinator; its Dir is set from
	// DataDir when empty.
	Group group.Config
	// Clustered makes topics, leaders and ISRs come from the cluster
	// metadata (ApplyTopic, SetCluster) instead of local decisions.
	Clustered bool
	// ReplicaLagMax is how long a follower may go without catching up to
	// the leader's end before the leader drops it from the ISR (Kafka's
	// replica.lag.time.max.ms). Default 10s.
	ReplicaLagMax time.Duration
	// ReplicaFetchWait is how long a follower's fetch waits at the leader
	// for new data. Default 500ms.
	ReplicaFetchWait time.Duration
	// OffsetsReplicas is the replication factor of the internal offsets
	// topic of a cluster (OffsetsTopic); it is created once that many nodes
	// are alive. Default 1.
	OffsetsReplicas int16
	// Logger receives the broker's logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the single-node defaults of DESIGN.md.
func DefaultConfig() Config {
	return Config{
		DataDir:             "./wisp-data",
		NodeID:              1,
		DefaultPartitions:   1,
		AutoCreateTopics:    true,
		MaintenanceInterval: time.Minute,
		Group:               group.DefaultConfig(),
		ReplicaLagMax:       10 * time.Second,
		ReplicaFetchWait:    500 * time.Millisecond,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("bus: DataDir is empty")
	}
	if c.DefaultPartitions <= 0 {
		return errors.New("bus: DefaultPartitions must be positive")
	}
	if c.MaintenanceInterval <= 0 {
		return errors.New("bus: MaintenanceInterval must be positive")
	}
	if c.Clustered && (c.ReplicaLagMax <= 0 || c.ReplicaFetchWait <= 0) {
		return errors.New("bus: ReplicaLagMax and ReplicaFetchWait must be positive")
	}
	if _, err := topicLogConfig(c.TopicDefaults, nil); err != nil {
		return fmt.Errorf("bus: TopicDefaults: %w", err)
	}
	return nil
}

// Topic config keys understood by wisp (Kafka names where Kafka has one).
const (
	ConfigCleanupPolicy     = "cleanup.policy"      // delete | compact
	ConfigRetentionMS       = "retention.ms"        // -1 = forever
	ConfigRetentionBytes    = "retention.bytes"     // -1 = unlimited
	ConfigSegmentBytes      = "segment.bytes"       //
	ConfigSegmentMS         = "segment.ms"          //
	ConfigFlush             = "flush"               // always | interval | os (wisp)
	ConfigFlushMS           = "flush.ms"            // interval for flush=interval
	ConfigDeleteRetentionMS = "delete.retention.ms" // tombstone lifetime after compaction
	ConfigMaxMessageBytes   = "max.message.bytes"   // largest batch accepted
	ConfigMinInsyncReplicas = "min.insync.replicas" // for acks=all
	ConfigTimestampType     = "message.timestamp.type"
)

// KnownConfigs lists every topic config key with its default value.
var KnownConfigs = map[string]string{
	ConfigCleanupPolicy:     "delete",
	ConfigRetentionMS:       strconv.FormatInt((7 * 24 * time.Hour).Milliseconds(), 10),
	ConfigRetentionBytes:    "-1",
	ConfigSegmentBytes:      strconv.Itoa(1 << 30),
	ConfigSegmentMS:         strconv.FormatInt((7 * 24 * time.Hour).Milliseconds(), 10),
	ConfigFlush:             "always",
	ConfigFlushMS:           "1000",
	ConfigDeleteRetentionMS: strconv.FormatInt((24 * time.Hour).Milliseconds(), 10),
	ConfigMaxMessageBytes:   strconv.Itoa(1<<20 + 12),
	ConfigMinInsyncReplicas: "1",
	ConfigTimestampType:     "CreateTime",
}

// effectiveConfigs merges defaults, broker defaults and topic configs.
func effectiveConfigs(brokerDefaults, topic map[string]string) map[string]string {
	out := make(map[string]string, len(KnownConfigs))
	for k, v := range KnownConfigs {
		out[k] = v
	}
	for k, v := range brokerDefaults {
		out[k] = v
	}
	for k, v := range topic {
		out[k] = v
	}
	return out
}

// topicLogConfig validates configs and turns them into a log.Config.
func topicLogConfig(brokerDefaults, topic map[string]string) (wlog.Config, error) {
	cfg := wlog.DefaultConfig()
	for k := range topic {
		if _, ok := KnownConfigs[k]; !ok {
			return cfg, fmt.Errorf("%w: unknown config %q", kerr.InvalidConfig, k)
		}
	}
	eff := effectiveConfigs(brokerDefaults, topic)
	num := func(k string) (int64, error) {
		n, err := strconv.ParseInt(eff[k], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %s=%q is not an integer", kerr.InvalidConfig, k, eff[k])
		}
		return n, nil
	}
	ms := func(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
	var err error
	var n int64
	switch eff[ConfigCleanupPolicy] {
	case "delete":
	case "compact":
		cfg.Compact = true
	case "compact,delete", "delete,compact":
		cfg.Compact = true
	default:
		return cfg, fmt.Errorf("%w: cleanup.policy=%q (want delete or compact)", kerr.InvalidConfig, eff[ConfigCleanupPolicy])
	}
	if n, err = num(ConfigRetentionMS); err != nil {
		return cfg, err
	}
	cfg.RetentionAge = ms(n)
	if n < 0 {
		cfg.RetentionAge = 0
	}
	if cfg.RetentionBytes, err = num(ConfigRetentionBytes); err != nil {
		return cfg, err
	}
	if cfg.SegmentBytes, err = num(ConfigSegmentBytes); err != nil {
		return cfg, err
	}
	if n, err = num(ConfigSegmentMS); err != nil {
		return cfg, err
	}
	cfg.SegmentAge = ms(n)
	switch eff[ConfigFlush] {
	case "always":
		cfg.Flush = wlog.FlushAlways
	case "interval":
		cfg.Flush = wlog.FlushInterval
	case "os":
		cfg.Flush = wlog.FlushOS
	default:
		return cfg, fmt.Errorf("%w: flush=%q (want always, interval or os)", kerr.InvalidConfig, eff[ConfigFlush])
	}
	if n, err = num(ConfigFlushMS); err != nil {
		return cfg, err
	}
	cfg.FlushInterval = ms(n)
	if n, err = num(ConfigDeleteRetentionMS); err != nil {
		return cfg, err
	}
	cfg.DeleteRetention = ms(n)
	if n, err = num(ConfigMaxMessageBytes); err != nil {
		return cfg, err
	}
	cfg.MaxBatchBytes = int(n)
	if _, err = num(ConfigMinInsyncReplicas); err != nil {
		return cfg, err
	}
	switch eff[ConfigTimestampType] {
	case "CreateTime", "LogAppendTime":
	default:
		return cfg, fmt.Errorf("%w: message.timestamp.type=%q", kerr.InvalidConfig, eff[ConfigTimestampType])
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	return cfg, nil
}

var topicNameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// ValidTopicName reports whether name is a legal topic name (Kafka rules).
func ValidTopicName(name string) error {
	if !topicNameRE.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("%w: %q (use 1-249 of [a-zA-Z0-9._-])", kerr.InvalidTopicException, name)
	}
	return nil
}
