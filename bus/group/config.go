package group

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config configures a Coordinator. Start from DefaultConfig; Open fills a
// zero duration or limit with its default, so a partly filled Config works.
type Config struct {
	// Dir is where the committed-offsets journal lives. Required; Open
	// creates it.
	Dir string
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (Kafka's group.min/max.session.timeout.ms); a join
	// outside them fails with kerr.InvalidSessionTimeout. Defaults 6s and 30m.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is how long a new, empty group waits for more
	// members before its first generation; every new joiner extends the wait
	// by the same amount up to the rebalance timeout (Kafka's
	// group.initial.rebalance.delay.ms). Default 0 for wisp (Kafka uses 3s).
	InitialRebalanceDelay time.Duration
	// OffsetsRetention is how long committed offsets of a group without
	// members are kept, counted from the later of the commit and the moment
	// the group became empty (Kafka's offsets.retention.minutes). Default 7
	// days.
	OffsetsRetention time.Duration
	// RetentionCheckInterval is how often expired offsets and dead groups
	// are swept (Kafka's offsets.retention.check.interval.ms). Default 10m.
	RetentionCheckInterval time.Duration
	// MaxOffsetMetadata bounds the metadata string of one committed offset
	// in bytes (Kafka's offset.metadata.max.bytes); longer fails with
	// kerr.OffsetMetadataTooLarge. Default 4096.
	MaxOffsetMetadata int
	// Replicate, when set, is called with every group commit's records
	// (keyed, see Entry) before they are written locally; an error fails
	// the commit and nothing is applied. A clustered broker appends them to
	// a replicated internal topic, from which Restore rebuilds the state
	// on the node that coordinates next.
	Replicate func(entries []Entry) error
	// Logger receives the coordinator's logs. Default: discarded.
	Logger *slog.Logger
}

// Defaults of DefaultConfig.
const (
	DefaultMinSessionTimeout      = 6 * time.Second
	DefaultMaxSessionTimeout      = 30 * time.Minute
	DefaultOffsetsRetention       = 7 * 24 * time.Hour
	DefaultRetentionCheckInterval = 10 * time.Minute
	DefaultMaxOffsetMetadata      = 4096
)

// DefaultConfig returns the defaults; Dir is left empty for the caller (the
// broker puts it under its data directory).
func DefaultConfig() Config {
	return Config{
		MinSessionTimeout:      DefaultMinSessionTimeout,
		MaxSessionTimeout:      DefaultMaxSessionTimeout,
		InitialRebalanceDelay:  0,
		OffsetsRetention:       DefaultOffsetsRetention,
		RetentionCheckInterval: DefaultRetentionCheckInterval,
		MaxOffsetMetadata:      DefaultMaxOffsetMetadata,
	}
}

// withDefaults fills zero fields with their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MinSessionTimeout == 0 {
		c.MinSessionTimeout = d.MinSessionTimeout
	}
	if c.MaxSessionTimeout == 0 {
		c.MaxSessionTimeout = d.MaxSessionTimeout
	}
	if c.OffsetsRetention == 0 {
		c.OffsetsRetention = d.OffsetsRetention
	}
	if c.RetentionCheckInterval == 0 {
		c.RetentionCheckInterval = d.RetentionCheckInterval
	}
	if c.MaxOffsetMetadata == 0 {
		c.MaxOffsetMetadata = d.MaxOffsetMetadata
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks the configuration after zero fields take their defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Dir == "":
		return errors.New("group: Dir is empty")
	case c.MinSessionTimeout < 0:
		return errors.New("group: MinSessionTimeout is negative")
	case c.MaxSessionTimeout < c.MinSessionTimeout:
		return fmt.Errorf("group: MaxSessionTimeout %v is below MinSessionTimeout %v", c.MaxSessionTimeout, c.MinSessionTimeout)
	case c.InitialRebalanceDelay < 0:
		return errors.New("group: InitialRebalanceDelay is negative")
	case c.OffsetsRetention < 0:
		return errors.New("group: OffsetsRetention is negative")
	case c.RetentionCheckInterval < 0:
		return errors.New("group: RetentionCheckInterval is negative")
	case c.MaxOffsetMetadata < 0:
		return errors.New("group: MaxOffsetMetadata is negative")
	}
	return nil
}
