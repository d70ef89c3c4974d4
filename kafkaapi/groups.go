package kafkaapi

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wispbus/wisp/bus/group"
)

// Coordinator types of FindCoordinator.
const (
	coordinatorGroup int8 = 0
	coordinatorTxn   int8 = 1
)

// handleFindCoordinator names the node coordinating a group
// (bus.Broker.GroupCoordinator: this node unless clustered).
// Transactional ids get TRANSACTIONAL_ID_AUTHORIZATION_FAILED: there is no
// transaction coordinator (see errTransactions).
func handleFindCoordinator(cc *call, req *kmsg.FindCoordinatorRequest) (*kmsg.FindCoordinatorResponse, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	var fe firstErr
	answer := func(key string) kmsg.FindCoordinatorResponseCoordinator {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		var err error
		switch req.CoordinatorType {
		case coordinatorGroup:
		case coordinatorTxn:
			err = fmt.Errorf("%w: %w", kerr.TransactionalIDAuthorizationFailed, errTransactions)
		default:
			err = fmt.Errorf("%w: coordinator type %d", kerr.InvalidRequest, req.CoordinatorType)
		}
		if err != nil {
			c.NodeID, c.Port = -1, -1
			c.ErrorCode = fe.add(err)
			c.ErrorMessage = errMessage(err)
			return c
		}
		id := cc.c.s.b.GroupCoordinator(key)
		host, port, ok := nodeAddr(cc, id)
		if !ok {
			c.NodeID, c.Port = -1, -1
			c.ErrorCode = fe.add(fmt.Errorf("%w: coordinator node %d has no Kafka address", kerr.CoordinatorNotAvailable, id))
			return c
		}
		c.NodeID, c.Host, c.Port = id, host, port
		return c
	}
	if req.Version >= 4 {
		for _, key := range req.CoordinatorKeys {
			resp.Coordinators = append(resp.Coordinators, answer(key))
		}
		return resp, fe.err
	}
	c := answer(req.CoordinatorKey)
	resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
	resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
	return resp, fe.err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func ms(v int32) time.Duration { return time.Duration(v) * time.Millisecond }

// handleJoinGroup blocks until the rebalance completes, so it finishes on
// a goroutine of its own.
func handleJoinGroup(cc *call, req *kmsg.JoinGroupRequest) {
	jr := group.JoinRequest{
		Group: req.Group, MemberID: req.MemberID, InstanceID: deref(req.InstanceID),
		ClientID: cc.clientID, ClientHost: cc.c.clientHost, ProtocolType: req.ProtocolType,
		SessionTimeout: ms(req.SessionTimeoutMillis), RebalanceTimeout: ms(req.RebalanceTimeoutMillis),
		// KIP-394: v4+ members join first to learn their id.
		RequireKnownMemberID: req.Version >= 4,
	}
	if req.Version == 0 {
		jr.RebalanceTimeout = 0 // the coordinator then uses the session timeout
	}
	for _, p := range req.Protocols {
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	cc.goAsync(func() {
		ctx, cancel := cc.c.waitContext()
		defer cancel()
		res, err := cc.c.s.b.Groups().Join(ctx, jr)
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = group.Code(err)
		resp.MemberID = res.MemberID
		if resp.MemberID == "" {
			resp.MemberID = req.MemberID
		}
		if err != nil {
			resp.Generation = -1
			cc.finish(resp, err)
			return
		}
		resp.Generation = res.Generation
		resp.ProtocolType = kmsg.StringPtr(res.ProtocolType)
		resp.Protocol = kmsg.StringPtr(res.Protocol)
		resp.LeaderID = res.LeaderID
		for _, m := range res.Members {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID, rm.ProtocolMetadata = m.MemberID, m.Metadata
			if m.InstanceID != "" {
				rm.InstanceID = kmsg.StringPtr(m.InstanceID)
			}
			resp.Members = append(resp.Members, rm)
		}
		cc.finish(resp, nil)
	})
}

// handleSyncGroup blocks until the leader's assignments arrive, so it
// finishes on a goroutine of its own.
func handleSyncGroup(cc *call, req *kmsg.SyncGroupRequest) {
	sr := group.SyncRequest{
		Group: req.Group, MemberID: req.MemberID, InstanceID: deref(req.InstanceID),
		ProtocolType: deref(req.ProtocolType), Protocol: deref(req.Protocol), Generation: req.Generation,
	}
	if len(req.GroupAssignment) > 0 {
		sr.Assignments = make(map[string][]byte, len(req.GroupAssignment))
		for _, a := range req.GroupAssignment {
			sr.Assignments[a.MemberID] = a.MemberAssignment
		}
	}
	cc.goAsync(func() {
		coord := cc.c.s.b.Groups()
		ctx, cancel := cc.c.waitContext()
		defer cancel()
		assignment, err := coord.Sync(ctx, sr)
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = group.Code(err)
		if err == nil {
			resp.MemberAssignment = assignment
			if req.Version >= 5 {
				// KIP-559: the group's protocol, for the client to check.
				resp.ProtocolType, resp.Protocol = req.ProtocolType, req.Protocol
				if resp.ProtocolType == nil || resp.Protocol == nil {
					if d, derr := coord.DescribeGroup(req.Group); derr == nil {
						resp.ProtocolType, resp.Protocol = kmsg.StringPtr(d.ProtocolType), kmsg.StringPtr(d.Protocol)
					}
				}
			}
		}
		cc.finish(resp, err)
	})
}

func handleHeartbeat(cc *call, req *kmsg.HeartbeatRequest) (*kmsg.HeartbeatResponse, error) {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	err := cc.c.s.b.Groups().Heartbeat(req.Group, req.MemberID, deref(req.InstanceID), req.Generation)
	resp.ErrorCode = group.Code(err)
	return resp, err
}

func handleLeaveGroup(cc *call, req *kmsg.LeaveGroupRequest) (*kmsg.LeaveGroupResponse, error) {
	coord := cc.c.s.b.Groups()
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if req.Version < 3 {
		err := coord.Leave(req.Group, req.MemberID)
		resp.ErrorCode = group.Code(err)
		return resp, err
	}
	// v3+ (KIP-345): a batch of members, with an error each.
	members := make([]group.LeaveMember, len(req.Members))
	for i, m := range req.Members {
		members[i] = group.LeaveMember{MemberID: m.MemberID, InstanceID: deref(m.InstanceID)}
	}
	errs := coord.LeaveMembers(req.Group, members)
	var fe firstErr
	for i, m := range req.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
		rm.ErrorCode = fe.add(errs[i])
		resp.Members = append(resp.Members, rm)
	}
	// A failure of the whole request (repeated for every member by the
	// coordinator) is also the top-level error, as Kafka reports it.
	if len(errs) > 0 {
		if code := group.Code(errs[0]); code == kerr.InvalidGroupID.Code || code == kerr.CoordinatorNotAvailable.Code {
			resp.ErrorCode = code
		}
	}
	return resp, fe.err
}

func handleOffsetCommit(cc *call, req *kmsg.OffsetCommitRequest) (*kmsg.OffsetCommitResponse, error) {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	topics := newTopicCache(cc.c.s.b)
	offsets := map[group.TopicPartition]group.OffsetCommit{}
	var fe firstErr
	// Responses point into resp; valid partitions get the commit's code.
	var pending []*kmsg.OffsetCommitResponseTopicPartition
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		t := &resp.Topics[i]
		*t = kmsg.NewOffsetCommitResponseTopic()
		t.Topic = rt.Topic
		t.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			p := &t.Partitions[j]
			*p = kmsg.NewOffsetCommitResponseTopicPartition()
			p.Partition = rp.Partition
			if _, _, err := topics.partition(rt.Topic, rp.Partition); err != nil {
				p.ErrorCode = fe.add(err)
				continue
			}
			epoch := int32(-1)
			if req.Version >= 6 {
				epoch = rp.LeaderEpoch
			}
			offsets[group.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}] =
				group.OffsetCommit{Offset: rp.Offset, LeaderEpoch: epoch, Metadata: deref(rp.Metadata)}
			pending = append(pending, p)
		}
	}
	if len(pending) == 0 {
		return resp, fe.err
	}
	generation, memberID := req.Generation, req.MemberID
	if req.Version == 0 {
		generation, memberID = -1, "" // v0 commits outside group management
	}
	err := cc.c.s.b.Groups().CommitOffsetsInstance(req.Group, memberID, deref(req.InstanceID), generation, offsets)
	fe.add(err)
	code := group.Code(err)
	for _, p := range pending {
		p.ErrorCode = code
	}
	return resp, fe.err
}

func handleOffsetFetch(cc *call, req *kmsg.OffsetFetchRequest) (*kmsg.OffsetFetchResponse, error) {
	coord := cc.c.s.b.Groups()
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	var fe firstErr
	if req.Version >= 8 {
		// KIP-709: several groups in one request.
		for _, rg := range req.Groups {
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group = rg.Group
			var tps []group.TopicPartition
			if rg.Topics != nil {
				tps = []group.TopicPartition{}
				for _, rt := range rg.Topics {
					for _, p := range rt.Partitions {
						tps = append(tps, group.TopicPartition{Topic: rt.Topic, Partition: p})
					}
				}
			}
			offs, err := coord.FetchOffsets(rg.Group, tps)
			if err != nil {
				g.ErrorCode = group.Code(err)
				fe.add(err)
				resp.Groups = append(resp.Groups, g)
				continue
			}
			for _, t := range offsetTopics(tps, offs) {
				gt := kmsg.NewOffsetFetchResponseGroupTopic()
				gt.Topic = t.Topic
				for _, p := range t.Partitions {
					gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata, gp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
					gt.Partitions = append(gt.Partitions, gp)
				}
				g.Topics = append(g.Topics, gt)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp, fe.err
	}
	var tps []group.TopicPartition
	if req.Topics != nil || req.Version < 2 { // v2+: null topics means all
		tps = []group.TopicPartition{}
		for _, rt := range req.Topics {
			for _, p := range rt.Partitions {
				tps = append(tps, group.TopicPartition{Topic: rt.Topic, Partition: p})
			}
		}
	}
	offs, err := coord.FetchOffsets(req.Group, tps)
	if err != nil {
		code := group.Code(err)
		resp.ErrorCode = code // v2+
		// v0-v1 have no top-level error: every partition carries it.
		for _, tp := range tps {
			p := kmsg.NewOffsetFetchResponseTopicPartition()
			p.Partition, p.Offset, p.ErrorCode = tp.Partition, -1, code
			resp.Topics = appendOffsetPartition(resp.Topics, tp.Topic, p)
		}
		return resp, err
	}
	resp.Topics = offsetTopics(tps, offs)
	return resp, nil
}

// offsetTopics builds the answer for tps (nil: every committed offset),
// with -1 for partitions without a committed offset.
func offsetTopics(tps []group.TopicPartition, offs map[group.TopicPartition]group.OffsetCommit) []kmsg.OffsetFetchResponseTopic {
	if tps == nil {
		tps = make([]group.TopicPartition, 0, len(offs))
		for tp := range offs {
			tps = append(tps, tp)
		}
		slices.SortFunc(tps, func(a, b group.TopicPartition) int {
			if c := strings.Compare(a.Topic, b.Topic); c != 0 {
				return c
			}
			return int(a.Partition) - int(b.Partition)
		})
	}
	var out []kmsg.OffsetFetchResponseTopic
	for _, tp := range tps {
		p := kmsg.NewOffsetFetchResponseTopicPartition()
		p.Partition = tp.Partition
		if oc, ok := offs[tp]; ok {
			p.Offset, p.LeaderEpoch, p.Metadata = oc.Offset, oc.LeaderEpoch, kmsg.StringPtr(oc.Metadata)
		} else {
			p.Offset, p.LeaderEpoch, p.Metadata = -1, -1, kmsg.StringPtr("")
		}
		out = appendOffsetPartition(out, tp.Topic, p)
	}
	return out
}

func appendOffsetPartition(ts []kmsg.OffsetFetchResponseTopic, topic string, p kmsg.OffsetFetchResponseTopicPartition) []kmsg.OffsetFetchResponseTopic {
	for i := range ts {
		if ts[i].Topic == topic {
			ts[i].Partitions = append(ts[i].Partitions, p)
			return ts
		}
	}
	t := kmsg.NewOffsetFetchResponseTopic()
	t.Topic = topic
	t.Partitions = []kmsg.OffsetFetchResponseTopicPartition{p}
	return append(ts, t)
}

func handleDescribeGroups(cc *call, req *kmsg.DescribeGroupsRequest) (*kmsg.DescribeGroupsResponse, error) {
	coord := cc.c.s.b.Groups()
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	var fe firstErr
	for _, name := range req.Groups {
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group = name
		g.AuthorizedOperations = authorizedOperationsUnset
		d, err := coord.DescribeGroup(name)
		if err != nil {
			fe.add(err)
			g.ErrorCode = group.Code(err)
			resp.Groups = append(resp.Groups, g)
			continue
		}
		g.State, g.ProtocolType, g.Protocol = d.State, d.ProtocolType, d.Protocol
		for _, m := range d.Members {
			gm := kmsg.NewDescribeGroupsResponseGroupMember()
			gm.MemberID, gm.ClientID, gm.ClientHost = m.MemberID, m.ClientID, m.ClientHost
			if m.InstanceID != "" {
				gm.InstanceID = kmsg.StringPtr(m.InstanceID)
			}
			gm.ProtocolMetadata, gm.MemberAssignment = m.Metadata, m.Assignment
			g.Members = append(g.Members, gm)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, fe.err
}

// groupType is what ListGroups v5+ (KIP-848) reports: every wisp group
// runs the classic protocol.
const groupType = "classic"

func handleListGroups(cc *call, req *kmsg.ListGroupsRequest) (*kmsg.ListGroupsResponse, error) {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	match := func(filter []string, v string) bool {
		return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, v) })
	}
	if !match(req.TypesFilter, groupType) {
		return resp, nil
	}
	for _, g := range cc.c.s.b.Groups().ListGroups() {
		if !match(req.StatesFilter, g.State) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.Group, g.ProtocolType, g.State, groupType
		resp.Groups = append(resp.Groups, lg)
	}
	return resp, nil
}

func handleDeleteGroups(cc *call, req *kmsg.DeleteGroupsRequest) (*kmsg.DeleteGroupsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	errs := cc.c.s.b.Groups().DeleteGroups(req.Groups...)
	var fe firstErr
	for _, name := range req.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = name
		if err := errs[name]; err != nil {
			fe.add(err)
			g.ErrorCode = group.Code(err)
			g.ErrorMessage = errMessage(err)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, fe.err
}

func handleOffsetDelete(cc *call, req *kmsg.OffsetDeleteRequest) (*kmsg.OffsetDeleteResponse, error) {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	var tps []group.TopicPartition
	for _, rt := range req.Topics {
		for _, p := range rt.Partitions {
			tps = append(tps, group.TopicPartition{Topic: rt.Topic, Partition: p.Partition})
		}
	}
	perTP, err := cc.c.s.b.Groups().DeleteOffsetsDetail(req.Group, tps)
	if err != nil {
		resp.ErrorCode = group.Code(err)
		return resp, err
	}
	var fe firstErr
	for _, rt := range req.Topics {
		t := kmsg.NewOffsetDeleteResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetDeleteResponseTopicPartition()
			p.Partition = rp.Partition
			if perr := perTP[group.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}]; perr != nil {
				fe.add(perr)
				p.ErrorCode = group.Code(perr)
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, fe.err
}
