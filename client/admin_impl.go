package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	resp, _, err := c.metadataVia(ctx, topics, autoCreate)
	return resp, err
}

// metadataVia is metadata that also returns the address asked.
func (c *Client) metadataVia(ctx context.Context, topics []string, autoCreate bool) (*wire.MetadataResponse, string, error) {
	var resp wire.MetadataResponse
	via, err := c.exchange(ctx, anyNode, &wire.MetadataRequest{Topics: topics, AutoCreate: autoCreate}, &resp)
	if err != nil {
		return nil, via, err
	}
	if err := checkErr(resp.Err); err != nil {
		return nil, via, err
	}
	c.meta.learn(&resp, via)
	if c.prod != nil {
		c.prod.poke()
	}
	return &resp, via, nil
}

func (c *Client) listTopics(ctx context.Context) ([]TopicInfo, error) {
	resp, err := c.metadata(ctx, nil, false)
	if err != nil {
		return nil, err
	}
	out := make([]TopicInfo, 0, len(resp.Topics))
	var repl []*TopicInfo
	for _, t := range resp.Topics {
		out = append(out, topicInfo(t))
	}
	for i := range out {
		if replicated(out[i]) {
			repl = append(repl, &out[i])
		}
	}
	c.leaderOffsets(ctx, repl...)
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
			info := topicInfo(t)
			if replicated(info) {
				c.leaderOffsets(ctx, &info)
			}
			return info, nil
		}
	}
	return TopicInfo{}, &BrokerError{Err: kerr.UnknownTopicOrPartition, Message: name}
}

// replicated reports whether info's partitions live on more than one node.
func replicated(info TopicInfo) bool {
	for _, p := range info.Partitions {
		if len(p.Replicas) > 1 || p.Leader != info.Partitions[0].Leader {
			return true
		}
	}
	return false
}

// leaderOffsets replaces the log start offsets and high watermarks of
// infos, which are those of the node that answered the metadata request
// (a follower's lag behind, a node without a replica has none), with
// their leaders' (ListOffsets earliest and latest go to each leader).
// Partitions whose leader does not answer keep what they had.
func (c *Client) leaderOffsets(ctx context.Context, infos ...*TopicInfo) {
	type key struct {
		topic string
		p     int32
	}
	at := map[key]*PartitionInfo{}
	for _, info := range infos {
		for i := range info.Partitions {
			at[key{info.Name, info.Partitions[i].Partition}] = &info.Partitions[i]
		}
	}
	if len(at) == 0 {
		return
	}
	for _, ts := range []int64{-2, -1} {
		var req []wire.ListOffsetsPartition
		for _, info := range infos {
			req = append(req, wire.ListOffsetsPartition{Topic: info.Name, Partition: -1, Timestamp: ts})
		}
		resp, err := c.listOffsetsRaw(ctx, req)
		if err != nil {
			return
		}
		for _, o := range resp {
			p, ok := at[key{o.Topic, o.Partition}]
			if o.Err.Code != 0 || !ok {
				continue
			}
			if ts == -2 {
				p.LogStartOffset = o.Offset
			} else {
				p.HighWatermark = o.Offset
			}
		}
	}
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

// listOffsetsRaw asks each partition's leader. A partition of -1 stands
// for every partition of its topic. Partitions whose leader moved are asked
// again after a metadata refresh, a few times.
func (c *Client) listOffsetsRaw(ctx context.Context, ps []wire.ListOffsetsPartition) ([]wire.ListedOffset, error) {
	var out []wire.ListedOffset
	var todo []wire.ListOffsetsPartition
	for _, p := range ps {
		if p.Partition >= 0 {
			todo = append(todo, p)
			continue
		}
		n := c.meta.partitions(p.Topic)
		if n == 0 {
			md, err := c.metadata(ctx, []string{p.Topic}, false)
			if err != nil {
				return nil, err
			}
			for _, t := range md.Topics {
				if t.Name == p.Topic && t.Err.Code != 0 {
					out = append(out, wire.ListedOffset{Topic: p.Topic, Partition: -1, Err: t.Err})
				}
			}
			n = c.meta.partitions(p.Topic)
		}
		for i := range n {
			todo = append(todo, wire.ListOffsetsPartition{Topic: p.Topic, Partition: i, Timestamp: p.Timestamp})
		}
	}
	for attempt := 0; len(todo) > 0; attempt++ {
		last := attempt == 3
		byNode := map[int32][]wire.ListOffsetsPartition{}
		var nodes []int32
		var missing []string
		for _, p := range todo {
			leader, _, ok := c.meta.leader(p.Topic, p.Partition)
			if !ok {
				if !contains(missing, p.Topic) {
					missing = append(missing, p.Topic)
				}
				leader = -1 // any node; it answers NOT_LEADER if it must
			}
			if _, seen := byNode[leader]; !seen {
				nodes = append(nodes, leader)
			}
			byNode[leader] = append(byNode[leader], p)
		}
		if len(missing) > 0 && attempt == 0 {
			if _, err := c.metadata(ctx, missing, false); err == nil {
				continue // regroup with the leaders now known
			}
		}
		todo = nil
		for _, node := range nodes {
			r := anyNode
			if node >= 0 {
				r = nodeRoute(node)
			}
			var resp wire.ListOffsetsResponse
			_, err := c.exchange(ctx, r, &wire.ListOffsetsRequest{Partitions: byNode[node]}, &resp)
			if err == nil {
				err = checkErr(resp.Err)
			}
			if err != nil {
				if last || !leaderMoved(err) || ctx.Err() != nil {
					return nil, err
				}
				todo = append(todo, byNode[node]...)
				continue
			}
			for _, lo := range resp.Partitions {
				if !last && lo.Partition >= 0 && leaderMoved(checkErr(lo.Err)) &&
					!errors.Is(checkErr(lo.Err), kerr.UnknownTopicOrPartition) {
					todo = append(todo, wire.ListOffsetsPartition{Topic: lo.Topic, Partition: lo.Partition,
						Timestamp: timestampOf(byNode[node], lo)})
					continue
				}
				out = append(out, lo)
			}
		}
		if len(todo) > 0 {
			c.requestRefresh()
			if err := c.awaitMetadata(ctx, todo[0].Topic); err != nil {
				return nil, err
			}
		}
	}
	slices.SortStableFunc(out, func(a, b wire.ListedOffset) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out, nil
}

// timestampOf finds the timestamp asked for lo's partition in req.
func timestampOf(req []wire.ListOffsetsPartition, lo wire.ListedOffset) int64 {
	for _, p := range req {
		if p.Topic == lo.Topic && p.Partition == lo.Partition {
			return p.Timestamp
		}
	}
	return -1
}

// awaitMetadata refreshes topic's metadata now, after a pause of
// RetryBackoff (the cluster may be electing a leader).
func (c *Client) awaitMetadata(ctx context.Context, topic string) error {
	select {
	case <-time.After(c.cfg.retryBackoff):
	case <-ctx.Done():
		return ctx.Err()
	}
	_, err := c.metadata(ctx, []string{topic}, false)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
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
	return ClusterInfo{NodeID: resp.NodeID, Version: resp.Version, Nodes: nodesOf(resp.Nodes), Status: resp.Status}, nil
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
	c.leaderLag(ctx, resp.Offsets)
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
	c.leaderLag(ctx, resp.Offsets)
	return groupOffsetsOf(resp.Offsets), nil
}

// leaderLag recomputes the high watermarks and lags the group coordinator
// answered with those of each partition's leader: in a cluster the
// coordinator may hold no replica of a partition, or a follower's, which
// trails the leader. On failure the coordinator's figures stay. A single
// node is its own leader: nothing to do.
func (c *Client) leaderLag(ctx context.Context, offs []wire.GroupOffsetLag) {
	if len(offs) == 0 || len(c.meta.nodeAddrs()) <= 1 {
		return
	}
	req := make([]wire.ListOffsetsPartition, 0, len(offs))
	for _, o := range offs {
		req = append(req, wire.ListOffsetsPartition{Topic: o.Topic, Partition: o.Partition, Timestamp: -1})
	}
	got, err := c.listOffsetsRaw(ctx, req)
	if err != nil {
		c.cfg.logger.Debug("lag from leaders failed; keeping the coordinator's", "err", err)
		return
	}
	hw := make(map[topicPart]int64, len(got))
	for _, lo := range got {
		if lo.Err.Code == 0 && lo.Offset >= 0 {
			hw[topicPart{lo.Topic, lo.Partition}] = lo.Offset
		}
	}
	for i := range offs {
		o := &offs[i]
		h, ok := hw[topicPart{o.Topic, o.Partition}]
		if !ok {
			continue
		}
		o.HighWatermark = h
		from := o.Committed
		if from < 0 {
			from = o.LogStartOffset
		}
		o.Lag = max(h-from, 0)
	}
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
