package transport

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/bus/group"
	"github.com/wispbus/wisp/internal/metrics"
	"github.com/wispbus/wisp/transport/wire"
)

// handle serves one one-shot request. A non-nil error is a protocol error
// that ends the stream; request failures are in the response.
func (cs *connState) handle(f wire.Frame) (wire.Message, error) {
	req, err := decodeRequest(f)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	resp, rerr := cs.dispatch(req)
	metrics.ObserveRequest("quic", f.API.String(), start, rerr)
	if resp == nil {
		// No response message: the request cannot be served on this
		// stream at all (rerr says why).
		if rerr == nil {
			rerr = protoErr(wire.StreamCodeInternal, kerr.UnknownServerError, f.API.String()+": no response")
		}
		return nil, rerr
	}
	return resp, nil
}

// dispatch runs a decoded request against the broker. The error returned
// (also inside the response) is only for metrics.
func (cs *connState) dispatch(req wire.Message) (wire.Message, error) {
	b := cs.s.b
	ctx := cs.ctx
	if resp, err := cs.notCoordinator(req); err != nil {
		return resp, err
	}
	switch r := req.(type) {
	case *wire.MetadataRequest:
		return cs.metadata(r)
	case *wire.ClusterInfoRequest:
		resp := &wire.ClusterInfoResponse{NodeID: b.NodeID(), Version: cs.s.cfg.Version, Nodes: cs.s.nodes()}
		if f := cs.s.clusterStatus.Load(); f != nil {
			resp.Status = (*f)()
		}
		return resp, nil
	case *wire.CreateTopicRequest:
		info, err := b.CreateTopic(ctx, bus.TopicSpec{Name: r.Name, Partitions: r.Partitions,
			ReplicationFactor: r.ReplicationFactor, Configs: r.Configs})
		resp := &wire.CreateTopicResponse{Err: errCode(err)}
		if err == nil {
			resp.Topic = topicMeta(info)
		}
		return resp, err
	case *wire.DeleteTopicRequest:
		err := b.DeleteTopic(ctx, r.Name)
		return &wire.SimpleResponse{Key: r.API(), Err: errCode(err)}, err
	case *wire.AlterConfigsRequest:
		err := b.AlterTopicConfigs(ctx, r.Name, r.Configs, r.Incremental)
		return &wire.SimpleResponse{Key: r.API(), Err: errCode(err)}, err
	case *wire.AddPartitionsRequest:
		err := b.AddPartitions(ctx, r.Name, r.Total)
		return &wire.SimpleResponse{Key: r.API(), Err: errCode(err)}, err
	case *wire.InitProducerIDRequest:
		id, epoch, err := b.InitProducerID(ctx)
		return &wire.InitProducerIDResponse{Err: errCode(err), ProducerID: id, Epoch: epoch}, err
	case *wire.ListOffsetsRequest:
		return cs.listOffsets(r), nil
	case *wire.FetchRequest:
		return cs.fetchOnce(r)
	case *wire.JoinGroupRequest:
		return cs.joinGroup(r)
	case *wire.SyncGroupRequest:
		as := make(map[string][]byte, len(r.Assignments))
		for _, a := range r.Assignments {
			as[a.MemberID] = a.Assignment
		}
		mine, err := b.Groups().Sync(ctx, group.SyncRequest{Group: r.Group, MemberID: r.MemberID,
			InstanceID: r.InstanceID, ProtocolType: r.ProtocolType, Protocol: r.Protocol,
			Generation: r.Generation, Assignments: as})
		return &wire.SyncGroupResponse{Err: errCode(err), Assignment: mine}, err
	case *wire.HeartbeatRequest:
		err := b.Groups().Heartbeat(r.Group, r.MemberID, r.InstanceID, r.Generation)
		return &wire.SimpleResponse{Key: r.API(), Err: errCode(err)}, err
	case *wire.LeaveGroupRequest:
		ms := make([]group.LeaveMember, len(r.Members))
		for i, m := range r.Members {
			ms[i] = group.LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID}
		}
		errs := b.Groups().LeaveMembers(r.Group, ms)
		resp := &wire.LeaveGroupResponse{Members: make([]wire.Err, len(errs))}
		var first error
		for i, err := range errs {
			resp.Members[i] = errCode(err)
			if first == nil {
				first = err
			}
		}
		return resp, first
	case *wire.OffsetCommitRequest:
		offs := make(map[group.TopicPartition]group.OffsetCommit, len(r.Offsets))
		for _, o := range r.Offsets {
			offs[group.TopicPartition{Topic: o.Topic, Partition: o.Partition}] =
				group.OffsetCommit{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}
		}
		err := b.Groups().CommitOffsetsInstance(r.Group, r.MemberID, r.InstanceID, r.Generation, offs)
		return &wire.SimpleResponse{Key: r.API(), Err: errCode(err)}, err
	case *wire.OffsetFetchRequest:
		var tps []group.TopicPartition
		for _, tp := range r.Partitions {
			tps = append(tps, group.TopicPartition{Topic: tp.Topic, Partition: tp.Partition})
		}
		got, err := b.Groups().FetchOffsets(r.Group, tps)
		resp := &wire.OffsetFetchResponse{Err: errCode(err)}
		for _, tp := range slices.SortedFunc(maps.Keys(got), compareTP) {
			oc := got[tp]
			resp.Offsets = append(resp.Offsets, wire.CommittedOffset{Topic: tp.Topic, Partition: tp.Partition,
				Offset: oc.Offset, LeaderEpoch: oc.LeaderEpoch, Metadata: oc.Metadata})
		}
		return resp, err
	case *wire.ListGroupsRequest:
		resp := &wire.ListGroupsResponse{}
		for _, g := range b.Groups().ListGroups() {
			resp.Groups = append(resp.Groups, wire.GroupListing{Group: g.Group, ProtocolType: g.ProtocolType, State: g.State})
		}
		return resp, nil
	case *wire.DescribeGroupRequest:
		return cs.describeGroup(r)
	case *wire.GroupOffsetsRequest:
		offs, err := cs.groupOffsets(r.Group, r.Topics)
		return &wire.GroupOffsetsResponse{Err: errCode(err), Offsets: offs}, err
	}
	if resp, ok, err := cs.dispatchFunction(req); ok {
		return resp, err
	}
	if resp, ok, err := cs.dispatchReplica(req); ok {
		return resp, err
	}
	return nil, protoErr(wire.StreamCodeUnsupported, kerr.UnsupportedVersion,
		fmt.Sprintf("%s is not a one-shot request", req.API()))
}

func compareTP(a, b group.TopicPartition) int {
	if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

// nodes lists this node with its listeners (a single node for now).
func (s *Server) nodes() []wire.Node {
	addrs := map[string]string{}
	for k, v := range s.cfg.Listeners {
		addrs[k] = v
	}
	if a := s.Addr(); a != nil {
		addrs["quic"] = a.String()
	}
	out := []wire.Node{{NodeID: s.b.NodeID(), Addrs: addrs}}
	for _, n := range s.b.Nodes() {
		if n.ID == s.b.NodeID() {
			// The cluster knows the addresses this node advertises.
			for k, v := range map[string]string{"quic": n.QUIC, "kafka": n.Kafka, "http": n.HTTP} {
				if v != "" {
					addrs[k] = v
				}
			}
			continue
		}
		a := map[string]string{}
		for k, v := range map[string]string{"quic": n.QUIC, "kafka": n.Kafka, "http": n.HTTP} {
			if v != "" {
				a[k] = v
			}
		}
		out = append(out, wire.Node{NodeID: n.ID, Addrs: a})
	}
	return out
}

func (cs *connState) metadata(r *wire.MetadataRequest) (wire.Message, error) {
	b := cs.s.b
	resp := &wire.MetadataResponse{NodeID: b.NodeID(), Nodes: cs.s.nodes()}
	if len(r.Topics) == 0 {
		for _, t := range b.Topics() {
			resp.Topics = append(resp.Topics, topicMeta(t))
		}
		return resp, nil
	}
	var first error
	for _, name := range r.Topics {
		var info bus.TopicInfo
		var err error
		if r.AutoCreate {
			info, err = b.EnsureTopic(cs.ctx, name)
		} else {
			info, err = b.Topic(name)
		}
		if err != nil {
			resp.Topics = append(resp.Topics, wire.TopicMeta{Name: name, Err: errCode(err)})
			if first == nil {
				first = err
			}
			continue
		}
		resp.Topics = append(resp.Topics, topicMeta(info))
	}
	return resp, first
}

func topicMeta(t bus.TopicInfo) wire.TopicMeta {
	m := wire.TopicMeta{Name: t.Name, ID: t.ID, ReplicationFactor: t.ReplicationFactor,
		Configs: t.Configs, Effective: t.Effective}
	for _, p := range t.Partitions {
		m.Partitions = append(m.Partitions, wire.PartitionMeta{
			Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: p.Replicas, ISR: p.ISR, LogStartOffset: p.LogStartOffset,
			HighWatermark: p.HighWatermark, EndOffset: p.EndOffset, SizeBytes: p.SizeBytes,
			RecordsIn: p.Stats.RecordsIn, BytesIn: p.Stats.BytesIn,
			RecordsOut: p.Stats.RecordsOut, BytesOut: p.Stats.BytesOut,
		})
	}
	return m
}

func (cs *connState) listOffsets(r *wire.ListOffsetsRequest) *wire.ListOffsetsResponse {
	b := cs.s.b
	resp := &wire.ListOffsetsResponse{}
	one := func(topic string, p int32, ts int64) {
		off, rts, err := b.ListOffset(topic, p, ts)
		resp.Partitions = append(resp.Partitions, wire.ListedOffset{Topic: topic, Partition: p,
			Err: errCode(err), Offset: off, Timestamp: rts})
	}
	for _, q := range r.Partitions {
		if q.Partition >= 0 {
			one(q.Topic, q.Partition, q.Timestamp)
			continue
		}
		info, err := b.Topic(q.Topic)
		if err != nil {
			resp.Partitions = append(resp.Partitions, wire.ListedOffset{Topic: q.Topic, Partition: -1, Err: errCode(err)})
			continue
		}
		for _, p := range info.Partitions {
			one(q.Topic, p.Partition, q.Timestamp)
		}
	}
	return resp
}

func (cs *connState) joinGroup(r *wire.JoinGroupRequest) (wire.Message, error) {
	protos := make([]group.Protocol, len(r.Protocols))
	for i, p := range r.Protocols {
		protos[i] = group.Protocol{Name: p.Name, Metadata: p.Metadata}
	}
	j, err := cs.s.b.Groups().Join(cs.ctx, group.JoinRequest{
		Group: r.Group, MemberID: r.MemberID, InstanceID: r.InstanceID, ClientID: r.ClientID,
		ClientHost: cs.host, ProtocolType: r.ProtocolType, Protocols: protos,
		SessionTimeout:       time.Duration(r.SessionTimeoutMs) * time.Millisecond,
		RebalanceTimeout:     time.Duration(r.RebalanceTimeoutMs) * time.Millisecond,
		RequireKnownMemberID: r.RequireKnownMemberID,
	})
	resp := &wire.JoinGroupResponse{Err: errCode(err), Generation: j.Generation, ProtocolType: j.ProtocolType,
		Protocol: j.Protocol, LeaderID: j.LeaderID, MemberID: j.MemberID}
	for _, m := range j.Members {
		resp.Members = append(resp.Members, wire.GroupMember{MemberID: m.MemberID, InstanceID: m.InstanceID,
			ClientID: m.ClientID, ClientHost: m.ClientHost, Metadata: m.Metadata})
	}
	return resp, err
}

func (cs *connState) describeGroup(r *wire.DescribeGroupRequest) (wire.Message, error) {
	d, err := cs.s.b.Groups().DescribeGroup(r.Group)
	if err != nil {
		return &wire.DescribeGroupResponse{Err: errCode(err), Group: r.Group}, err
	}
	resp := &wire.DescribeGroupResponse{Group: d.Group, State: d.State, ProtocolType: d.ProtocolType,
		Protocol: d.Protocol, Generation: d.Generation}
	for _, m := range d.Members {
		resp.Members = append(resp.Members, wire.GroupMember{MemberID: m.MemberID, InstanceID: m.InstanceID,
			ClientID: m.ClientID, ClientHost: m.ClientHost, Metadata: m.Metadata, Assignment: m.Assignment})
	}
	resp.Offsets, err = cs.groupOffsets(r.Group, nil)
	resp.Err = errCode(err)
	return resp, err
}

// groupOffsets returns committed offsets with lag: of every partition of
// topics, or of every partition the group committed when topics is empty.
func (cs *connState) groupOffsets(name string, topics []string) ([]wire.GroupOffsetLag, error) {
	b := cs.s.b
	var tps []group.TopicPartition
	for _, t := range topics {
		info, err := b.Topic(t)
		if err != nil {
			return nil, err
		}
		for _, p := range info.Partitions {
			tps = append(tps, group.TopicPartition{Topic: t, Partition: p.Partition})
		}
	}
	got, err := b.Groups().FetchOffsets(name, tps)
	if err != nil {
		return nil, err
	}
	if len(topics) == 0 {
		tps = slices.SortedFunc(maps.Keys(got), compareTP)
	}
	out := make([]wire.GroupOffsetLag, 0, len(tps))
	for _, tp := range tps {
		o := wire.GroupOffsetLag{Topic: tp.Topic, Partition: tp.Partition, Committed: -1, HighWatermark: -1, LogStartOffset: -1}
		if oc, ok := got[tp]; ok {
			o.Committed, o.Metadata = oc.Offset, oc.Metadata
		}
		if p, err := b.Partition(tp.Topic, tp.Partition); err == nil {
			o.HighWatermark = p.HighWatermark()
			o.LogStartOffset = p.Log().StartOffset()
			from := o.Committed
			if from < 0 {
				from = o.LogStartOffset
			}
			o.Lag = max(0, o.HighWatermark-from)
		}
		out = append(out, o)
	}
	return out, nil
}
