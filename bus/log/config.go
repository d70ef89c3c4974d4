package log

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/wispbus/wisp/internal/batch"
)

// FlushPolicy says when appended data is forced to stable storage.
type FlushPolicy int

const (
	// FlushAlways (the default) makes Sync wait for an fsync. Concurrent
	// Sync callers share one fsync (group commit): one fsync covers every
	// batch appended while the previous one ran.
	FlushAlways FlushPolicy = iota
	// FlushInterval fsyncs from a background goroutine every
	// Config.FlushInterval; Sync returns at once.
	FlushInterval
	// FlushOS leaves write-back to the operating system; the log fsyncs only
	// when it rolls a segment and at Close. Sync returns at once.
	FlushOS
)

func (p FlushPolicy) String() string {
	switch p {
	case FlushAlways:
		return "always"
	case FlushInterval:
		return "interval"
	case FlushOS:
		return "os"
	}
	return fmt.Sprintf("FlushPolicy(%d)", int(p))
}

// DefaultMaxBatchBytes is Kafka's default message.max.bytes (1 MiB plus the
// batch overhead).
const DefaultMaxBatchBytes = 1<<20 + 12

// Config is the per-partition storage configuration. Build it from
// DefaultConfig and override fields; Open and SetConfig call Validate.
type Config struct {
	// SegmentBytes rolls the active segment when an append would make it
	// larger than this (segment.bytes). Default 1 GiB, at most 2 GiB-1.
	SegmentBytes int64
	// SegmentAge rolls the active segment once it has held data for this
	// long (segment.ms); measured from the wall-clock time of the segment's
	// first append, or after a restart from the first batch's max timestamp.
	// Zero or less disables. Default 7 days.
	SegmentAge time.Duration
	// IndexIntervalBytes is the spacing of sparse offset/time index entries.
	// Default 4096.
	IndexIntervalBytes int
	// Flush is the durability policy. Default FlushAlways.
	Flush FlushPolicy
	// FlushInterval is the fsync period under FlushInterval. Default 1s.
	FlushInterval time.Duration
	// RetentionBytes bounds the total log size; -1 (the default) is unlimited.
	RetentionBytes int64
	// RetentionAge deletes closed segments whose newest record is older;
	// zero or less is unlimited. Default 7 days.
	RetentionAge time.Duration
	// Compact marks a compacted topic (cleanup.policy=compact). Informational:
	// Compact works whatever its value; the owner decides when to call it.
	Compact bool
	// DeleteRetention keeps a tombstone this long after compaction first saw
	// the segment that holds it (delete.retention.ms). Default 24h.
	DeleteRetention time.Duration
	// MaxBatchBytes is the largest batch Append accepts (message.max.bytes);
	// larger ones fail with kerr.MessageTooLarge. Default DefaultMaxBatchBytes.
	MaxBatchBytes int
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       1 << 30,
		SegmentAge:         7 * 24 * time.Hour,
		IndexIntervalBytes: 4096,
		Flush:              FlushAlways,
		FlushInterval:      time.Second,
		RetentionBytes:     -1,
		RetentionAge:       7 * 24 * time.Hour,
		DeleteRetention:    24 * time.Hour,
		MaxBatchBytes:      DefaultMaxBatchBytes,
	}
}

// ErrInvalidConfig wraps every Validate failure.
var ErrInvalidConfig = errors.New("log: invalid config")

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.SegmentBytes <= 0 || c.SegmentBytes > math.MaxInt32:
		return fmt.Errorf("%w: SegmentBytes %d not in [1, %d]", ErrInvalidConfig, c.SegmentBytes, math.MaxInt32)
	case c.IndexIntervalBytes <= 0:
		return fmt.Errorf("%w: IndexIntervalBytes %d must be positive", ErrInvalidConfig, c.IndexIntervalBytes)
	case c.Flush < FlushAlways || c.Flush > FlushOS:
		return fmt.Errorf("%w: unknown flush policy %d", ErrInvalidConfig, int(c.Flush))
	case c.Flush == FlushInterval && c.FlushInterval <= 0:
		return fmt.Errorf("%w: FlushInterval %v must be positive", ErrInvalidConfig, c.FlushInterval)
	case c.RetentionBytes < -1:
		return fmt.Errorf("%w: RetentionBytes %d (want -1 or >= 0)", ErrInvalidConfig, c.RetentionBytes)
	case c.DeleteRetention < 0:
		return fmt.Errorf("%w: DeleteRetention %v is negative", ErrInvalidConfig, c.DeleteRetention)
	case c.MaxBatchBytes < batch.HeaderSize || c.MaxBatchBytes > batch.MaxBatchSize:
		return fmt.Errorf("%w: MaxBatchBytes %d not in [%d, %d]", ErrInvalidConfig, c.MaxBatchBytes, batch.HeaderSize, batch.MaxBatchSize)
	}
	return nil
}
