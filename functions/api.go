package functions

import (
	"time"

	"github.com/wispbus/wisp/bus/group"
	"github.com/wispbus/wisp/wasm"
)

// State is a function's lifecycle state.
type State string

// Function states.
const (
	// StateRunning: workers run every input partition this node leads.
	StateRunning State = "running"
	// StatePaused: stopped by Pause; Resume continues from the committed
	// offsets.
	StatePaused State = "paused"
	// StateFailed: stopped after MaxFailures consecutive failing batches
	// (Info.Error says why); Resume retries, a redeploy replaces it.
	StateFailed State = "failed"
)

// Info summarises a function for `wisp fn list`.
type Info struct {
	Name    string   `json:"name"`
	Input   string   `json:"input"`
	Outputs []string `json:"outputs"`
	DLQ     string   `json:"dlq,omitempty"`
	State   State    `json:"state"`
	// Error is why the function failed (state failed), or else the most
	// recent error of any of its partitions ("" when none).
	Error    string    `json:"error,omitempty"`
	Version  int       `json:"version"`
	Module   string    `json:"module"` // hex SHA-256 of the module ("native" for DeployNative)
	Deployed time.Time `json:"deployed"`
	// Lag is the records of the input not yet processed: the sum over
	// partitions of high watermark minus committed offset.
	Lag int64 `json:"lag"`
	// Counters since the node started (across versions).
	RecordsIn    int64 `json:"records_in"`
	RecordsOut   int64 `json:"records_out"`
	Errors       int64 `json:"errors"` // input records the function failed on
	DeadLettered int64 `json:"dead_lettered"`
}

// PartitionStatus describes one input partition of a function.
type PartitionStatus struct {
	Partition int32 `json:"partition"`
	// Worker is the partition's worker state on this node: starting,
	// running, idle, retrying, waiting, or "" when no worker runs it.
	Worker string `json:"worker"`
	// Committed is the committed input offset (-1: none yet).
	Committed     int64 `json:"committed"`
	HighWatermark int64 `json:"high_watermark"`
	Lag           int64 `json:"lag"`
	// Pending is set while a unit of input [Committed, PendingEnd) is being
	// written (or was interrupted by a crash and will be replayed).
	PendingEnd    int64     `json:"pending_end,omitempty"`
	ProducerID    int64     `json:"producer_id"`
	ProducerEpoch int16     `json:"producer_epoch"`
	RecordsIn     int64     `json:"records_in"`
	RecordsOut    int64     `json:"records_out"`
	Errors        int64     `json:"errors"`
	DeadLettered  int64     `json:"dead_lettered"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorAt   time.Time `json:"last_error_at,omitzero"`
}

// Detail is everything `wisp fn describe` shows.
type Detail struct {
	Info
	Manifest Manifest `json:"manifest"`
	// Group is the consumer group holding the committed offsets.
	Group      string            `json:"group"`
	Partitions []PartitionStatus `json:"partitions"`
	Instances  wasm.PoolStats    `json:"instances"`
}

// GroupID is the consumer group under which a function's input offsets
// are committed, so that `wisp group describe` shows its lag.
func GroupID(function string) string { return group.FencedGroupPrefix + function }
