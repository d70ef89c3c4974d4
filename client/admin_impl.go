package client

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wispbus/wisp/transport/wire"
)

func (c *Client) simple(ctx context.Context, req wire.Message) error {
	resp := wire.SimpleResponse{Key: req.API()}
	if err := c.roundTrip(ctx, req, &resp); err != nil {
		return err
	}
	return checkErr(resp.Err)
}

func (c *Client) createTopic(ctx context.Context, spec TopicSpec) (TopicInfo, error) {
	var resp wire.CreateTopicResponse
	err := c.roundTrip(ctx, &wire.CreateTopicRequest{Name: spec.Name, Partitions: spec.Partitions,
		ReplicationFactor: spec.ReplicationFactor, Configs: spec.Configs}, &resp)
	if err != nil {
		return TopicInfo{}, err
	}
	if err := checkErr(resp.Err); err != nil {
		return TopicInfo{}, err
	}
	return topicInfo(resp.Topic), nil
}

func (c *Client) deleteTopic(ctx context.Context, name string) error {
	return c.simple(ctx, &wire.DeleteTopicRequest{Name: name})
}

func (c *Client) alterTopicConfigs(ctx context.Context, name string, configs map[string]string, incremental bool) error {
	return c.simple(ctx, &wire.AlterConfigsRequest{Name: name, Configs: configs, Incremental: incremental})
}

func (c *Client) addPartitions(ctx context.Context, name string, total int32) error {
	return c.simple(ctx, &wire.AddPartitionsRequest{Name: name, Total: total})
}

func (c *Client) metadata(ctx context.Context, topics []string, autoCreate bool) (*wire.MetadataResponse, error) {
	var resp wire.MetadataResponse
	if err := c.roundTrip(ctx, &wire.MetadataRequest{Topics: topics, AutoCreate: autoCreate}, &resp); err != nil {
		return nil, err
	}
	if err := checkErr(resp.Err); err != nil {
		return nil, err
	}
	return &resp, nil
}

func (c *Client) listTopics(ctx context.Context) ([]TopicInfo, error) {
	resp, err := c.metadata(ctx, nil, false)
	if err != nil {
		return nil, err
	}
	out := make([]TopicInfo, 0, len(resp.Topics))
	for _, t := range resp.Topics {
		out = append(out, topicInfo(t))
	}
	return out, nil
}

func (c *Client) describeTopic(ctx context.Context, name string) (TopicInfo, error) {
	resp, err := c.metadata(ctx, []string{name}, false)
	if err != nil {
		return TopicInfo{}, err
	}
	for _, t := range resp.Topics {
		if t.Name == name {
			if err := checkErr(t.Err); err != nil {
				return TopicInfo{}, err
			}
			return topicInfo(t), nil
		}
	}
	return TopicInfo{}, &BrokerError{Err: kerr.UnknownTopicOrPartition, Message: name}
}

func topicInfo(t wire.TopicMeta) TopicInfo {
	info := TopicInfo{Name: t.Name, ID: t.ID, ReplicationFactor: t.ReplicationFactor,
		Configs: t.Configs, Effective: t.Effective}
	for _, p := range t.Partitions {
		info.Partitions = append(info.Partitions, PartitionInfo{
			Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: p.Replicas, ISR: p.ISR, LogStartOffset: p.LogStartOffset,
			HighWatermark: p.HighWatermark, EndOffset: p.EndOffset, SizeBytes: p.SizeBytes,
			RecordsIn: p.RecordsIn, BytesIn: p.BytesIn, RecordsOut: p.RecordsOut, BytesOut: p.BytesOut,
		})
	}
	return info
}

// offsetTimestamp maps an Offset to ListOffsets' timestamp (-2 earliest,
// -1 latest, ms), and false for an exact offset.
func offsetTimestamp(o Offset) (int64, bool) {
	switch o.kind {
	case offsetStart:
		return -2, true
	case offsetEnd:
		return -1, true
	case offsetTime:
		return o.v, true
	}
	return 0, false
}

func (c *Client) listOffsets(ctx context.Context, topic string, at Offset) ([]PartitionOffset, error) {
	if topic == "" {
		return nil, ErrNoTopic
	}
	ts, ok := offsetTimestamp(at)
	if !ok {
		info, err := c.describeTopic(ctx, topic)
		if err != nil {
			return nil, err
		}
		out := make([]PartitionOffset, 0, len(info.Partitions))
		for _, p := range info.Partitions {
			out = append(out, PartitionOffset{Partition: p.Partition, Offset: at.v})
		}
		return out, nil
	}
	resp, err := c.listOffsetsRaw(ctx, []wire.ListOffsetsPartition{{Topic: topic, Partition: -1, Timestamp: ts}})
	if err != nil {
		return nil, err
	}
	out := make([]PartitionOffset, 0, len(resp))
	for _, p := range resp {
		if p.Partition < 0 {
			return nil, checkErr(p.Err)
		}
		po := PartitionOffset{Partition: p.Partition, Offset: p.Offset, Err: checkErr(p.Err)}
		if p.Timestamp >= 0 && at.kind == offsetTime {
			po.Timestamp = time.UnixMilli(p.Timestamp)
		}
		out = append(out, po)
	}
	return out, nil
}

func (c *Client) listOffsetsRaw(ctx context.Context, ps []wire.ListOffsetsPartition) ([]wire.ListedOffset, error) {
	var resp wire.ListOffsetsResponse
	if err := c.roundTrip(ctx, &wire.ListOffsetsRequest{Partitions: ps}, &resp); err != nil {
		return nil, err
	}
	if err := checkErr(resp.Err); err != nil {
		return nil, err
	}
	return resp.Partitions, nil
}

func nodesOf(ns []wire.Node) []NodeInfo {
	out := make([]NodeInfo, 0, len(ns))
	for _, n := range ns {
		out = append(out, NodeInfo{NodeID: n.NodeID, Addrs: n.Addrs})
	}
	return out
}

func (c *Client) clusterInfo(ctx context.Context) (ClusterInfo, error) {
	var resp wire.ClusterInfoResponse
	if err := c.roundTrip(ctx, &wire.ClusterInfoRequest{}, &resp); err != nil {
		return ClusterInfo{}, err
	}
	if err := checkErr(resp.Err); err != nil {
		return ClusterInfo{}, err
	}
	return ClusterInfo{NodeID: resp.NodeID, Version: resp.Version, Nodes: nodesOf(resp.Nodes)}, nil
}

func (c *Client) ping(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	_, err := c.clusterInfo(ctx)
	return time.Since(start), err
}

func (c *Client) listGroups(ctx context.Context) ([]GroupSummary, error) {
	var resp wire.ListGroupsResponse
	if err := c.roundTrip(ctx, &wire.ListGroupsRequest{}, &resp); err != nil {
		return nil, err
	}
	if err := checkErr(resp.Err); err != nil {
		return nil, err
	}
	out := make([]GroupSummary, 0, len(resp.Groups))
	for _, g := range resp.Groups {
		out = append(out, GroupSummary{Group: g.Group, ProtocolType: g.ProtocolType, State: g.State})
	}
	return out, nil
}

func (c *Client) describeGroup(ctx context.Context, group string) (GroupDescription, error) {
	var resp wire.DescribeGroupResponse
	if err := c.roundTrip(ctx, &wire.DescribeGroupRequest{Group: group}, &resp); err != nil {
		return GroupDescription{}, err
	}
	if err := checkErr(resp.Err); err != nil {
		return GroupDescription{}, err
	}
	d := GroupDescription{Group: resp.Group, State: resp.State, ProtocolType: resp.ProtocolType,
		Protocol: resp.Protocol, Generation: resp.Generation, Offsets: groupOffsetsOf(resp.Offsets)}
	for _, m := range resp.Members {
		gm := GroupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost}
		if resp.ProtocolType == consumerProtocolType {
			var md kmsg.ConsumerMemberMetadata
			if len(m.Metadata) > 0 && md.ReadFrom(m.Metadata) == nil {
				gm.Topics = md.Topics
			}
			var as kmsg.ConsumerMemberAssignment
			if len(m.Assignment) > 0 && as.ReadFrom(m.Assignment) == nil {
				gm.Assigned = map[string][]int32{}
				for _, t := range as.Topics {
					gm.Assigned[t.Topic] = append(gm.Assigned[t.Topic], t.Partitions...)
				}
			}
		}
		d.Members = append(d.Members, gm)
	}
	return d, nil
}

func groupOffsetsOf(os []wire.GroupOffsetLag) []GroupOffset {
	out := make([]GroupOffset, 0, len(os))
	for _, o := range os {
		out = append(out, GroupOffset{Topic: o.Topic, Partition: o.Partition, Committed: o.Committed,
			Metadata: o.Metadata, HighWatermark: o.HighWatermark, Lag: o.Lag})
	}
	return out
}

func (c *Client) groupOffsets(ctx context.Context, group string, topics ...string) ([]GroupOffset, error) {
	var resp wire.GroupOffsetsResponse
	if err := c.roundTrip(ctx, &wire.GroupOffsetsRequest{Group: group, Topics: topics}, &resp); err != nil {
		return nil, err
	}
	if err := checkErr(resp.Err); err != nil {
		return nil, err
	}
	return groupOffsetsOf(resp.Offsets), nil
}

func (c *Client) commitGroupOffsets(ctx context.Context, group string, offsets map[string]map[int32]int64) error {
	req := &wire.OffsetCommitRequest{Group: group, Generation: -1}
	for t, ps := range offsets {
		for p, o := range ps {
			if o < 0 {
				return fmt.Errorf("client: negative offset %d for %s/%d", o, t, p)
			}
			req.Offsets = append(req.Offsets, wire.CommittedOffset{Topic: t, Partition: p, Offset: o, LeaderEpoch: -1})
		}
	}
	return c.simple(ctx, req)
}
