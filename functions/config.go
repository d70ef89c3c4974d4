package functions

import (
	"errors"
	"log/slog"
	"time"

	"github.com/wispbus/wisp/wasm"
)

// Config configures a Manager. Start from DefaultConfig; Open fills zero
// fields with their defaults.
type Config struct {
	// DataDir is where functions keep their modules, deployments and
	// compiled code: typically <broker data dir>/functions. Required.
	DataDir string
	// Logger receives the manager's own logs. Default slog.Default().
	Logger *slog.Logger
	// Runtime is the node's WebAssembly runtime. Default: Open creates one
	// with its compilation cache in DataDir/cache, and Close closes it.
	Runtime *wasm.Runtime

	// Leads reports whether this node should run the worker of an input
	// partition: the seam for running workers where the partition leader
	// is. Default: every partition (a single node leads everything). It is
	// asked again every ScanInterval; workers start and stop to follow it.
	Leads func(topic string, partition int32) bool
	// Cluster, when set, runs the functions as one member of a cluster:
	// deployments go through the cluster metadata (ApplyFunction applies
	// them here), offsets live in the replicated group offsets and outputs
	// go to their partitions' leaders. Set Leads too. Nil: a single node.
	Cluster Cluster
	// ScanInterval is how often running functions look for new input
	// partitions and changed leadership. Default 5s.
	ScanInterval time.Duration

	// MaxBatchRecords bounds the input records of one batch (one call into
	// the module). Default 5000: each batch costs two fsyncs (the commit and
	// the outputs), so batches are as large as the outputs allow.
	MaxBatchRecords int
	// MaxBatchBytes bounds the input bytes fetched for one batch. Default
	// 1 MiB.
	MaxBatchBytes int
	// RetryBackoff is the first wait after a failed batch; it doubles per
	// consecutive failure up to MaxBackoff. Defaults 100ms and 10s.
	RetryBackoff time.Duration
	MaxBackoff   time.Duration
	// IdlePoll wakes an idle worker even without a new-data notification.
	// Default 1s.
	IdlePoll time.Duration

	// LogLines is how many log lines each function keeps. Default 1000.
	LogLines int
	// LogRate bounds the lines per second a function may log (bursts of
	// twice as many pass); the rest are counted and reported as dropped.
	// Default 100.
	LogRate float64
}

// DefaultConfig returns the defaults; DataDir is left for the caller.
func DefaultConfig() Config {
	return Config{
		ScanInterval:    5 * time.Second,
		MaxBatchRecords: 5000,
		MaxBatchBytes:   1 << 20,
		RetryBackoff:    100 * time.Millisecond,
		MaxBackoff:      10 * time.Second,
		IdlePoll:        time.Second,
		LogLines:        1000,
		LogRate:         100,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Leads == nil {
		c.Leads = func(string, int32) bool { return true }
	}
	if c.ScanInterval <= 0 {
		c.ScanInterval = d.ScanInterval
	}
	if c.MaxBatchRecords <= 0 {
		c.MaxBatchRecords = d.MaxBatchRecords
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = d.MaxBatchBytes
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = d.RetryBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = d.MaxBackoff
	}
	if c.IdlePoll <= 0 {
		c.IdlePoll = d.IdlePoll
	}
	if c.LogLines <= 0 {
		c.LogLines = d.LogLines
	}
	if c.LogRate <= 0 {
		c.LogRate = d.LogRate
	}
	return c
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("functions: DataDir is empty")
	}
	if c.MaxBatchRecords < 0 || c.MaxBatchBytes < 0 {
		return errors.New("functions: negative batch limit")
	}
	if c.MaxBackoff > 0 && c.RetryBackoff > c.MaxBackoff {
		return errors.New("functions: RetryBackoff exceeds MaxBackoff")
	}
	return nil
}
