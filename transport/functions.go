package transport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/bus/group"
	"github.com/wispbus/wisp/functions"
	"github.com/wispbus/wisp/internal/metrics"
	"github.com/wispbus/wisp/transport/wire"
	"github.com/wispbus/wisp/wasm"
)

// Functions is what the server needs of the node's function manager to
// serve the function APIs (0x0030-0x003F). *functions.Manager implements
// it; Config.Functions left nil answers those APIs with an error saying
// that functions are disabled on the node.
type Functions interface {
	Deploy(ctx context.Context, m functions.Manifest, module []byte) (functions.Info, error)
	List() []functions.Info
	Describe(name string) (functions.Detail, error)
	Logs(name string, since time.Time) ([]functions.LogLine, error)
	Follow(name string) (lines <-chan functions.LogLine, cancel func(), err error)
	Pause(ctx context.Context, name string) error
	Resume(ctx context.Context, name string) error
	Delete(ctx context.Context, name string) error
}

var _ Functions = (*functions.Manager)(nil)

// errFunctionsDisabled answers the function APIs on a node without them.
var errFunctionsDisabled = errors.New("functions are disabled on this node")

// functionErr maps a function manager error to its wire error:
// RESOURCE_NOT_FOUND for an unknown function, INVALID_CONFIG for a bad
// manifest, INVALID_REQUEST for a module that was rejected,
// LEADER_NOT_AVAILABLE (retriable) while the manager closes, and the
// broker's mapping for the rest (topic errors of a deploy are kerr values).
func functionErr(err error) wire.Err {
	switch {
	case err == nil:
		return wire.Err{}
	case errors.Is(err, functions.ErrNotFound):
		return wire.Err{Code: kerr.ResourceNotFound.Code, Message: err.Error()}
	case errors.Is(err, functions.ErrInvalidManifest):
		return wire.Err{Code: kerr.InvalidConfig.Code, Message: err.Error()}
	case errors.Is(err, wasm.ErrInvalidModule):
		return wire.Err{Code: kerr.InvalidRequest.Code, Message: err.Error()}
	case errors.Is(err, functions.ErrClosed):
		return wire.Err{Code: kerr.LeaderNotAvailable.Code, Message: err.Error()}
	case errors.Is(err, errFunctionsDisabled):
		return wire.Err{Code: kerr.InvalidRequest.Code, Message: err.Error()}
	}
	return errCode(err)
}

// dispatchFunction serves the one-shot function requests; ok is false for
// any other request.
func (cs *connState) dispatchFunction(req wire.Message) (resp wire.Message, ok bool, err error) {
	fns := cs.s.cfg.Functions
	switch r := req.(type) {
	case *wire.FunctionDeployRequest:
		var info functions.Info
		err = errFunctionsDisabled
		if fns != nil {
			info, err = cs.deployFunction(fns, r)
		}
		return &wire.FunctionDeployResponse{Err: functionErr(err), Function: functionInfo(info)}, true, err
	case *wire.FunctionListRequest:
		if fns == nil {
			return &wire.FunctionListResponse{Err: functionErr(errFunctionsDisabled)}, true, errFunctionsDisabled
		}
		resp := &wire.FunctionListResponse{}
		for _, i := range fns.List() {
			resp.Functions = append(resp.Functions, functionInfo(i))
		}
		return resp, true, nil
	case *wire.FunctionNameRequest:
		if fns == nil {
			err = errFunctionsDisabled
		}
		switch r.Key {
		case wire.APIFunctionDescribe:
			var d functions.Detail
			if err == nil {
				d, err = fns.Describe(r.Name)
			}
			resp := describeResponse(d)
			resp.Err = functionErr(err)
			return resp, true, err
		case wire.APIFunctionPause:
			if err == nil {
				err = fns.Pause(cs.ctx, r.Name)
			}
		case wire.APIFunctionResume:
			if err == nil {
				err = fns.Resume(cs.ctx, r.Name)
			}
		case wire.APIFunctionDelete:
			if err == nil {
				err = fns.Delete(cs.ctx, r.Name)
			}
		default:
			return nil, false, nil
		}
		return &wire.SimpleResponse{Key: r.Key, Err: functionErr(err)}, true, err
	}
	return nil, false, nil
}

func (cs *connState) deployFunction(fns Functions, r *wire.FunctionDeployRequest) (functions.Info, error) {
	var m functions.Manifest
	if err := json.Unmarshal(r.Manifest, &m); err != nil {
		return functions.Info{}, errors.Join(functions.ErrInvalidManifest, err)
	}
	if len(r.Module) == 0 {
		return functions.Info{}, errors.Join(wasm.ErrInvalidModule, errors.New("the module is empty"))
	}
	return fns.Deploy(cs.ctx, m, r.Module)
}

func functionInfo(i functions.Info) wire.FunctionInfo {
	w := wire.FunctionInfo{Name: i.Name, Input: i.Input, Outputs: i.Outputs, DLQ: i.DLQ, State: string(i.State),
		Error: i.Error, Version: int32(i.Version), Module: i.Module, Lag: i.Lag, RecordsIn: i.RecordsIn,
		RecordsOut: i.RecordsOut, Errors: i.Errors, DeadLettered: i.DeadLettered}
	if !i.Deployed.IsZero() {
		w.DeployedMs = i.Deployed.UnixMilli()
	}
	return w
}

func describeResponse(d functions.Detail) *wire.FunctionDescribeResponse {
	resp := &wire.FunctionDescribeResponse{Function: functionInfo(d.Info), Group: d.Group,
		InstancesLive: int32(d.Instances.Live), InstancesIdle: int32(d.Instances.Idle),
		InstancesCreated: d.Instances.Created, InstancesDiscarded: d.Instances.Discarded}
	if d.Name != "" {
		resp.Manifest, _ = json.Marshal(d.Manifest) // strings, numbers and a map: cannot fail
	}
	for _, p := range d.Partitions {
		wp := wire.FunctionPartition{Partition: p.Partition, Worker: p.Worker, Committed: p.Committed,
			HighWatermark: p.HighWatermark, Lag: p.Lag, PendingEnd: p.PendingEnd, ProducerID: p.ProducerID,
			ProducerEpoch: p.ProducerEpoch, RecordsIn: p.RecordsIn, RecordsOut: p.RecordsOut, Errors: p.Errors,
			DeadLettered: p.DeadLettered, LastError: p.LastError}
		if !p.LastErrorAt.IsZero() {
			wp.LastErrorMs = p.LastErrorAt.UnixMilli()
		}
		resp.Partitions = append(resp.Partitions, wp)
	}
	return resp
}

func logLines(ls []functions.LogLine) []wire.FunctionLogLine {
	out := make([]wire.FunctionLogLine, len(ls))
	for i, l := range ls {
		out[i] = wire.FunctionLogLine{TimeMs: l.Time.UnixMilli(), Stream: l.Stream, Text: l.Text}
	}
	return out
}

// maxLogLinesPerFrame bounds one FunctionLogsResponse: lines are at most
// 4 KiB, so a frame stays far below the frame limit.
const maxLogLinesPerFrame = 1000

// functionLogs serves a logs stream: the kept lines since the request's
// time, in frames of at most maxLogLinesPerFrame lines, then, with Follow,
// every new line until the client closes or resets the stream (or the
// function is deleted, when the server closes it).
func (cs *connState) functionLogs(str *quic.Stream, first wire.Frame) {
	start := time.Now()
	req, err := decodeRequest(first)
	if err != nil {
		cs.failRead(str, err)
		return
	}
	r := req.(*wire.FunctionLogsRequest)
	fns := cs.s.cfg.Functions
	answer := func(err error) {
		metrics.ObserveRequest("quic", first.API.String(), start, err)
		_ = writeFrame(str, wire.AppendFrame(nil, &wire.FunctionLogsResponse{Err: functionErr(err)}))
		str.CancelRead(quic.StreamErrorCode(wire.StreamCodeOK))
		_ = str.Close()
	}
	if fns == nil {
		answer(errFunctionsDisabled)
		return
	}
	var since time.Time
	if r.SinceMs > 0 {
		since = time.UnixMilli(r.SinceMs)
	}
	// Subscribe before reading the backlog, so that no line falls between
	// the two; lines in both are skipped on the live side (below).
	var live <-chan functions.LogLine
	if r.Follow {
		var stop func()
		if live, stop, err = fns.Follow(r.Name); err != nil {
			answer(err)
			return
		}
		defer stop()
	}
	backlog, err := fns.Logs(r.Name, since)
	if err != nil {
		answer(err)
		return
	}
	metrics.ObserveRequest("quic", first.API.String(), start, nil)
	send := func(ls []functions.LogLine) error {
		return writeFrame(str, wire.AppendFrame(nil, &wire.FunctionLogsResponse{Lines: logLines(ls)}))
	}
	sent := lastLines(backlog)
	// The first frame answers the request, even with no lines.
	for answered := false; !answered || len(backlog) > 0; answered = true {
		n := min(len(backlog), maxLogLinesPerFrame)
		if err := send(backlog[:n]); err != nil {
			str.CancelRead(quic.StreamErrorCode(wire.StreamCodeCanceled))
			return
		}
		backlog = backlog[n:]
	}
	if !r.Follow {
		str.CancelRead(quic.StreamErrorCode(wire.StreamCodeOK))
		_ = str.Close()
		return
	}
	cs.followLogs(str, live, since, sent)
}

// lastLines returns the lines sharing the newest time of ls: the lines a
// follower may receive again from the live channel.
func lastLines(ls []functions.LogLine) []functions.LogLine {
	if len(ls) == 0 {
		return nil
	}
	i := len(ls)
	for i > 0 && ls[i-1].Time.Equal(ls[len(ls)-1].Time) {
		i--
	}
	return append([]functions.LogLine(nil), ls[i:]...)
}

// followLogs pushes live lines until the client ends the stream (FIN or
// reset), the connection or server ends, or the function is deleted.
// Lines before since are skipped, and so are seen, the newest lines
// already sent, which the live channel may deliver again.
func (cs *connState) followLogs(str *quic.Stream, live <-chan functions.LogLine, since time.Time, seen []functions.LogLine) {
	ctx, cancel := context.WithCancel(cs.ctx)
	defer cancel()
	// The client sends nothing after its request; its closing ends the
	// stream. The watcher is owned by this function.
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		defer cancel()
		_, _ = io.Copy(io.Discard, str)
	}()
	defer func() {
		str.CancelRead(quic.StreamErrorCode(wire.StreamCodeOK))
		<-watcherDone
	}()
	var newest time.Time
	if len(seen) > 0 {
		newest = seen[0].Time
	}
	dup := func(l functions.LogLine) bool {
		if l.Time.Before(since) {
			return true
		}
		if l.Time.After(newest) {
			seen = nil
			return false
		}
		for i, s := range seen {
			if s == l {
				seen = append(seen[:i], seen[i+1:]...)
				return true
			}
		}
		return l.Time.Before(newest)
	}
	var batch []functions.LogLine
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeCanceled))
			return
		case l, ok := <-live:
			if !ok { // deleted
				_ = str.Close()
				return
			}
			if !dup(l) {
				batch = append(batch, l)
			}
		}
	drain:
		for len(batch) < maxLogLinesPerFrame {
			select {
			case l, ok := <-live:
				if !ok {
					break drain
				}
				if !dup(l) {
					batch = append(batch, l)
				}
			default:
				break drain
			}
		}
		if len(batch) == 0 {
			continue
		}
		if err := writeFrame(str, wire.AppendFrame(nil, &wire.FunctionLogsResponse{Lines: logLines(batch)})); err != nil {
			str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeCanceled))
			return
		}
	}
}

// Calls functions make on other nodes in a cluster: a worker writes its
// outputs to each output partition's leader and keeps its committed offsets
// with the group coordinator, wherever those are. They are the ordinary
// client requests, sent over this node's peer connections.

// peerTimeout bounds a peer call whose ctx has no deadline.
const peerTimeout = 15 * time.Second

func callTimeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return peerTimeout
}

// Produce appends batches to a partition on node, its leader, with
// acks=all. A batch of an idempotent producer that node already has is
// acknowledged as a duplicate, as for a local produce.
func (p *Peers) Produce(ctx context.Context, node int32, topic string, partition int32, batches []byte) (bus.ProduceResult, error) {
	d := callTimeout(ctx)
	req := &wire.ProduceRequest{Acks: int8(bus.AcksAll), TimeoutMs: int32(d / time.Millisecond), Topic: topic,
		Partition: partition, Batches: batches}
	var resp wire.ProduceResponse
	if err := p.call(ctx, node, d, req, &resp); err != nil {
		return bus.ProduceResult{}, err
	}
	res := bus.ProduceResult{BaseOffset: resp.BaseOffset, LastOffset: resp.LastOffset, LogAppendTime: resp.LogAppendTime,
		LogStartOffset: resp.LogStartOffset, Duplicate: resp.Duplicate}
	return res, wireErr(resp.Err)
}

// CommitOffsets commits a group's offsets on node, the group's
// coordinator, outside any generation (as a function worker does).
func (p *Peers) CommitOffsets(ctx context.Context, node int32, groupID string, offsets map[group.TopicPartition]group.OffsetCommit) error {
	req := &wire.OffsetCommitRequest{Group: groupID, Generation: -1}
	for tp, oc := range offsets {
		req.Offsets = append(req.Offsets, wire.CommittedOffset{Topic: tp.Topic, Partition: tp.Partition,
			Offset: oc.Offset, LeaderEpoch: oc.LeaderEpoch, Metadata: oc.Metadata})
	}
	resp := wire.SimpleResponse{Key: wire.APIOffsetCommit}
	if err := p.call(ctx, node, callTimeout(ctx), req, &resp); err != nil {
		return err
	}
	return wireErr(resp.Err)
}

// FetchOffsets reads a group's committed offsets on node, the group's
// coordinator (tps nil: every partition).
func (p *Peers) FetchOffsets(ctx context.Context, node int32, groupID string, tps []group.TopicPartition) (map[group.TopicPartition]group.OffsetCommit, error) {
	req := &wire.OffsetFetchRequest{Group: groupID}
	for _, tp := range tps {
		req.Partitions = append(req.Partitions, wire.TopicPartition{Topic: tp.Topic, Partition: tp.Partition})
	}
	var resp wire.OffsetFetchResponse
	if err := p.call(ctx, node, callTimeout(ctx), req, &resp); err != nil {
		return nil, err
	}
	if err := wireErr(resp.Err); err != nil {
		return nil, err
	}
	out := make(map[group.TopicPartition]group.OffsetCommit, len(resp.Offsets))
	for _, o := range resp.Offsets {
		out[group.TopicPartition{Topic: o.Topic, Partition: o.Partition}] =
			group.OffsetCommit{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}
	}
	return out, nil
}
