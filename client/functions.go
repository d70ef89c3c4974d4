package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wispbus/wisp/transport/wire"
)

// FunctionSpec is a function's manifest: what it reads, where it may
// write, and its sandbox (docs/functions.md). Zero limits take the
// server's defaults.
//
//	info, err := c.DeployFunction(ctx, client.FunctionSpec{
//		Name: "mask", Input: "signups", Outputs: []string{"signups-clean"},
//		DLQ: "signups-dlq", Env: map[string]string{"FIELDS": "email"},
//	}, module)
type FunctionSpec struct {
	// Name identifies the function: 1-100 of [a-zA-Z0-9._-].
	Name string `json:"name"`
	// Input is the topic the function reads (every partition).
	Input string `json:"input"`
	// Outputs are the topics it may write to; the first is the default.
	Outputs []string `json:"outputs"`
	// DLQ is the dead-letter topic of the records it fails on; empty: a
	// failing record stops the function (state failed).
	DLQ string `json:"dlq,omitempty"`
	// Env is the module's environment (names starting WISP_ are reserved).
	Env map[string]string `json:"env,omitempty"`
	// MemoryMB caps each instance's memory (server default 64).
	MemoryMB int `json:"-"`
	// Timeout is the deadline of one batch (server default 5s).
	Timeout time.Duration `json:"-"`
	// Instances bounds the concurrent instances (server default 4).
	Instances int `json:"-"`
	// Retries of a failing batch before it is bisected (default 2), and
	// consecutive failing batches before the function fails (default 5).
	Retries, MaxFailures int `json:"-"`
	// Start is where a new function starts reading: "start", "end" (the
	// default), an offset "N", or "@T" (RFC 3339 or Unix ms). On a
	// redeploy, empty continues from the committed offsets and anything
	// else moves them.
	Start string `json:"start,omitempty"`
}

type functionLimitsJSON struct {
	MemoryMB    int    `json:"memory_mb,omitempty"`
	Timeout     string `json:"timeout,omitempty"`
	Instances   int    `json:"instances,omitempty"`
	Retries     int    `json:"retries,omitempty"`
	MaxFailures int    `json:"max_failures,omitempty"`
}

// MarshalJSON writes the manifest JSON of docs/functions.md, limits
// nested under "limits" and the timeout as a duration string ("2s").
func (s FunctionSpec) MarshalJSON() ([]byte, error) {
	type plain FunctionSpec // without this method
	j := struct {
		plain
		Limits functionLimitsJSON `json:"limits"`
	}{plain: plain(s), Limits: functionLimitsJSON{MemoryMB: s.MemoryMB, Instances: s.Instances,
		Retries: s.Retries, MaxFailures: s.MaxFailures}}
	if s.Timeout != 0 {
		j.Limits.Timeout = s.Timeout.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the manifest JSON of docs/functions.md.
func (s *FunctionSpec) UnmarshalJSON(b []byte) error {
	type plain FunctionSpec
	var j struct {
		plain
		Limits functionLimitsJSON `json:"limits"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = FunctionSpec(j.plain)
	s.MemoryMB, s.Instances, s.Retries, s.MaxFailures = j.Limits.MemoryMB, j.Limits.Instances, j.Limits.Retries, j.Limits.MaxFailures
	if j.Limits.Timeout != "" {
		d, err := time.ParseDuration(j.Limits.Timeout)
		if err != nil {
			return fmt.Errorf("limits.timeout: %w", err)
		}
		s.Timeout = d
	}
	return nil
}

// FunctionInfo summarises a deployed function.
type FunctionInfo struct {
	Name    string   `json:"name"`
	Input   string   `json:"input"`
	Outputs []string `json:"outputs"`
	DLQ     string   `json:"dlq,omitempty"`
	// State is running, paused or failed.
	State string `json:"state"`
	// Error is why the function failed, or else its most recent error.
	Error    string    `json:"error,omitempty"`
	Version  int       `json:"version"`
	Module   string    `json:"module"` // hex SHA-256 of the module
	Deployed time.Time `json:"deployed"`
	// Lag is the input records not yet processed, over all partitions.
	Lag int64 `json:"lag"`
	// Counters since the node started.
	RecordsIn    int64 `json:"records_in"`
	RecordsOut   int64 `json:"records_out"`
	Errors       int64 `json:"errors"`
	DeadLettered int64 `json:"dead_lettered"`
}

// FunctionPartition is one input partition of a function.
type FunctionPartition struct {
	Partition int32 `json:"partition"`
	// Worker is the partition's worker state (starting, running, idle,
	// retrying, waiting), "" when no worker runs it.
	Worker        string `json:"worker"`
	Committed     int64  `json:"committed"` // -1: nothing committed yet
	HighWatermark int64  `json:"high_watermark"`
	Lag           int64  `json:"lag"`
	// PendingEnd is the end of the input unit being written, 0 when none.
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

// FunctionInstances counts a function's module instances on the node.
type FunctionInstances struct {
	Live      int   `json:"live"`
	Idle      int   `json:"idle"`
	Created   int64 `json:"created"`
	Discarded int64 `json:"discarded"` // closed after a failure
}

// FunctionDetail is everything DescribeFunction reports.
type FunctionDetail struct {
	FunctionInfo
	// Spec is the deployed version's manifest, server defaults filled in.
	Spec FunctionSpec `json:"manifest"`
	// Group is the consumer group holding the committed input offsets.
	Group      string              `json:"group"`
	Partitions []FunctionPartition `json:"partitions"`
	Instances  FunctionInstances   `json:"instances"`
}

// FunctionLogLine is one line of a function's log.
type FunctionLogLine struct {
	Time time.Time `json:"time"`
	// Stream is stdout or stderr for what the module wrote, wisp for what
	// the node reports about the function.
	Stream string `json:"stream"`
	Text   string `json:"text"`
}

// DeployFunction deploys module (WebAssembly bytes) as spec.Name: a new
// function, or the next version of an existing one, which continues from
// the committed offsets (or from spec.Start). The server compiles and runs
// the module once first: a module that does not compile or lacks the ABI
// fails with kerr.InvalidRequest, a bad spec with kerr.InvalidConfig, and
// a running version keeps running. Compiling takes a second or so: give
// ctx room.
func (c *Client) DeployFunction(ctx context.Context, spec FunctionSpec, module []byte) (FunctionInfo, error) {
	manifest, err := json.Marshal(spec)
	if err != nil {
		return FunctionInfo{}, err
	}
	var resp wire.FunctionDeployResponse
	if err := c.roundTrip(ctx, &wire.FunctionDeployRequest{Manifest: manifest, Module: module}, &resp); err != nil {
		return FunctionInfo{}, err
	}
	if err := checkErr(resp.Err); err != nil {
		return FunctionInfo{}, err
	}
	return functionInfo(resp.Function), nil
}

// ListFunctions describes every function of the node, sorted by name.
func (c *Client) ListFunctions(ctx context.Context) ([]FunctionInfo, error) {
	var resp wire.FunctionListResponse
	if err := c.roundTrip(ctx, &wire.FunctionListRequest{}, &resp); err != nil {
		return nil, err
	}
	if err := checkErr(resp.Err); err != nil {
		return nil, err
	}
	out := make([]FunctionInfo, 0, len(resp.Functions))
	for _, f := range resp.Functions {
		out = append(out, functionInfo(f))
	}
	return out, nil
}

// DescribeFunction describes one function partition by partition, or
// fails with kerr.ResourceNotFound.
func (c *Client) DescribeFunction(ctx context.Context, name string) (FunctionDetail, error) {
	var resp wire.FunctionDescribeResponse
	if err := c.roundTrip(ctx, &wire.FunctionNameRequest{Key: wire.APIFunctionDescribe, Name: name}, &resp); err != nil {
		return FunctionDetail{}, err
	}
	if err := checkErr(resp.Err); err != nil {
		return FunctionDetail{}, err
	}
	d := FunctionDetail{FunctionInfo: functionInfo(resp.Function), Group: resp.Group,
		Partitions: make([]FunctionPartition, 0, len(resp.Partitions)),
		Instances: FunctionInstances{Live: int(resp.InstancesLive), Idle: int(resp.InstancesIdle),
			Created: resp.InstancesCreated, Discarded: resp.InstancesDiscarded}}
	if len(resp.Manifest) > 0 {
		if err := json.Unmarshal(resp.Manifest, &d.Spec); err != nil {
			return FunctionDetail{}, fmt.Errorf("%w: manifest: %v", ErrProtocol, err)
		}
	}
	for _, p := range resp.Partitions {
		fp := FunctionPartition{Partition: p.Partition, Worker: p.Worker, Committed: p.Committed,
			HighWatermark: p.HighWatermark, Lag: p.Lag, PendingEnd: p.PendingEnd, ProducerID: p.ProducerID,
			ProducerEpoch: p.ProducerEpoch, RecordsIn: p.RecordsIn, RecordsOut: p.RecordsOut, Errors: p.Errors,
			DeadLettered: p.DeadLettered, LastError: p.LastError}
		if p.LastErrorMs != 0 {
			fp.LastErrorAt = time.UnixMilli(p.LastErrorMs).UTC()
		}
		d.Partitions = append(d.Partitions, fp)
	}
	return d, nil
}

// PauseFunction stops a function's workers; ResumeFunction continues from
// the committed offsets (also after a restart, and for a failed function).
func (c *Client) PauseFunction(ctx context.Context, name string) error {
	return c.simple(ctx, &wire.FunctionNameRequest{Key: wire.APIFunctionPause, Name: name})
}

// ResumeFunction restarts a paused or failed function.
func (c *Client) ResumeFunction(ctx context.Context, name string) error {
	return c.simple(ctx, &wire.FunctionNameRequest{Key: wire.APIFunctionResume, Name: name})
}

// DeleteFunction stops and removes a function and its committed offsets;
// what it wrote stays in its output topics.
func (c *Client) DeleteFunction(ctx context.Context, name string) error {
	return c.simple(ctx, &wire.FunctionNameRequest{Key: wire.APIFunctionDelete, Name: name})
}

// FunctionLogs returns the log lines the node keeps for a function (the
// last 1000 by default) written at or after since (zero: all), oldest
// first.
func (c *Client) FunctionLogs(ctx context.Context, name string, since time.Time) ([]FunctionLogLine, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.requestTimeout)
		defer cancel()
	}
	var out []FunctionLogLine
	err := c.functionLogs(ctx, name, since, false, func(l FunctionLogLine) { out = append(out, l) })
	return out, err
}

// FollowFunctionLogs calls fn with the kept lines written at or after
// since (zero: all), then with every new line as the function writes it,
// until ctx ends (it then returns ctx.Err()) or the function is deleted
// (nil). fn runs on the caller's goroutine. A follower that falls far
// behind misses lines rather than slowing the function down.
func (c *Client) FollowFunctionLogs(ctx context.Context, name string, since time.Time, fn func(FunctionLogLine)) error {
	return c.functionLogs(ctx, name, since, true, fn)
}

func (c *Client) functionLogs(ctx context.Context, name string, since time.Time, follow bool, fn func(FunctionLogLine)) error {
	req := &wire.FunctionLogsRequest{Name: name, Follow: follow}
	if !since.IsZero() {
		req.SinceMs = max(since.UnixMilli(), 1)
	}
	str, conn, err := c.openStream(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		str.CancelRead(quic.StreamErrorCode(wire.StreamCodeCanceled))
		str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeCanceled))
	})
	defer stop()
	if _, err := str.Write(wire.AppendFrame(nil, req)); err != nil {
		return c.streamErr(ctx, conn, err)
	}
	if !follow {
		_ = str.Close() // nothing more to say; a follower keeps its side open, closing it ends the stream
	}
	defer func() {
		str.CancelRead(quic.StreamErrorCode(wire.StreamCodeOK))
		str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeOK))
	}()
	for first := true; ; first = false {
		f, err := wire.ReadFrame(str, nil, c.cfg.maxFrameBytes)
		if errors.Is(err, io.EOF) && !first {
			return nil // every kept line sent, or the function deleted
		}
		if err != nil {
			return c.streamErr(ctx, conn, err)
		}
		var resp wire.FunctionLogsResponse
		if err := decodeAnswer(f, &resp); err != nil {
			return err
		}
		if err := checkErr(resp.Err); err != nil {
			return err
		}
		for _, l := range resp.Lines {
			fn(FunctionLogLine{Time: time.UnixMilli(l.TimeMs).UTC(), Stream: l.Stream, Text: l.Text})
		}
	}
}

func functionInfo(f wire.FunctionInfo) FunctionInfo {
	i := FunctionInfo{Name: f.Name, Input: f.Input, Outputs: f.Outputs, DLQ: f.DLQ, State: f.State, Error: f.Error,
		Version: int(f.Version), Module: f.Module, Lag: f.Lag, RecordsIn: f.RecordsIn, RecordsOut: f.RecordsOut,
		Errors: f.Errors, DeadLettered: f.DeadLettered}
	if i.Outputs == nil {
		i.Outputs = []string{}
	}
	if f.DeployedMs != 0 {
		i.Deployed = time.UnixMilli(f.DeployedMs).UTC()
	}
	return i
}
