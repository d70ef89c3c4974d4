package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/transport/wire"
)

// groupLoop is the group member's state machine: join, sync, then
// heartbeat and auto-commit until a rebalance, which revokes the
// assignment and joins again. It runs until the consumer closes.
func (k *Consumer) groupLoop() {
	backoff := k.c.cfg.retryBackoff
	fail := func(err error) {
		if k.ctx.Err() != nil {
			return
		}
		if rejoinNow(err) {
			// Group dynamics, not failures: another member joined or left
			// mid-round, or this member's id or generation went stale.
			k.c.cfg.logger.Debug("consumer group: joining again", "group", k.cfg.group, "err", err)
			return
		}
		k.c.cfg.logger.Warn("consumer group", "group", k.cfg.group, "err", err)
		if !IsRetryable(err) {
			k.pushError(fmt.Errorf("client: group %s: %w", k.cfg.group, err))
		}
		select {
		case <-time.After(backoff):
		case <-k.ctx.Done():
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	for k.ctx.Err() == nil {
		gen, assigned, err := k.joinAndSync()
		if err != nil {
			fail(err)
			continue
		}
		backoff = k.c.cfg.retryBackoff
		if err := k.start(gen, assigned); err != nil {
			fail(err)
			k.revokeNow()
			continue
		}
		k.stable(gen)
	}
}

// joinAndSync runs one Join + Sync round and returns the generation and
// this member's assignment.
func (k *Consumer) joinAndSync() (int32, map[string][]int32, error) {
	k.mu.Lock()
	member, owned, prevGen := k.memberID, k.lastAssigned, k.lastGen
	k.mu.Unlock()
	meta := encodeMetadata(k.cfg.topics, owned, prevGen)
	req := &wire.JoinGroupRequest{Group: k.cfg.group, MemberID: member, InstanceID: k.cfg.instanceID,
		ClientID: k.c.cfg.clientID, ProtocolType: consumerProtocolType,
		SessionTimeoutMs:     int32(k.cfg.sessionTimeout / time.Millisecond),
		RebalanceTimeoutMs:   int32(k.cfg.rebalanceTimeout / time.Millisecond),
		RequireKnownMemberID: true}
	for _, name := range k.cfg.assignors {
		req.Protocols = append(req.Protocols, wire.GroupProtocol{Name: name, Metadata: meta})
	}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(k.ctx, k.cfg.rebalanceTimeout+k.c.cfg.requestTimeout)
		var resp wire.JoinGroupResponse
		err := k.c.roundTrip(ctx, req, &resp)
		cancel()
		if err != nil {
			return 0, nil, err
		}
		err = checkErr(resp.Err)
		switch {
		case errors.Is(err, kerr.MemberIDRequired) && attempt == 0:
			req.MemberID = resp.MemberID
			k.setMember(resp.MemberID)
			continue
		case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.FencedInstanceID):
			k.setMember("")
			return 0, nil, err
		case err != nil:
			return 0, nil, err
		}
		k.setMember(resp.MemberID)
		var plan []wire.MemberAssignment
		if resp.LeaderID == resp.MemberID {
			if plan, err = k.lead(&resp); err != nil {
				return 0, nil, fmt.Errorf("assigning partitions as leader: %w", err)
			}
		}
		ctx, cancel = context.WithTimeout(k.ctx, k.cfg.rebalanceTimeout+k.c.cfg.requestTimeout)
		var sresp wire.SyncGroupResponse
		err = k.c.roundTrip(ctx, &wire.SyncGroupRequest{Group: k.cfg.group, MemberID: resp.MemberID,
			InstanceID: k.cfg.instanceID, ProtocolType: consumerProtocolType, Protocol: resp.Protocol,
			Generation: resp.Generation, Assignments: plan}, &sresp)
		cancel()
		if err == nil {
			err = checkErr(sresp.Err)
		}
		if errors.Is(err, kerr.UnknownMemberID) {
			k.setMember("")
		}
		if err != nil {
			return 0, nil, err
		}
		assigned, err := decodeAssignment(sresp.Assignment)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: assignment: %v", ErrProtocol, err)
		}
		return resp.Generation, assigned, nil
	}
}

// rejoinNow reports errors after which a member simply joins again.
func rejoinNow(err error) bool {
	return errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.UnknownMemberID) ||
		errors.Is(err, kerr.IllegalGeneration) || errors.Is(err, kerr.MemberIDRequired)
}

func (k *Consumer) setMember(id string) {
	k.mu.Lock()
	k.memberID = id
	k.mu.Unlock()
}

// lead computes every member's assignment with the group's protocol.
func (k *Consumer) lead(resp *wire.JoinGroupResponse) ([]wire.MemberAssignment, error) {
	var members []memberSub
	topics := map[string]bool{}
	for _, m := range resp.Members {
		sub, err := decodeMetadata(m.MemberID, m.InstanceID, m.Metadata)
		if err != nil {
			// A member we cannot read gets nothing rather than failing
			// the whole group.
			k.c.cfg.logger.Warn("undecodable member metadata", "member", m.MemberID, "err", err)
			sub = memberSub{id: m.MemberID}
		}
		members = append(members, sub)
		for _, t := range sub.topics {
			topics[t] = true
		}
	}
	counts := map[string]int32{}
	if len(topics) > 0 {
		ctx, cancel := context.WithTimeout(k.ctx, k.c.cfg.requestTimeout)
		md, err := k.c.metadata(ctx, slices.Sorted(maps.Keys(topics)), false)
		cancel()
		if err != nil {
			return nil, err
		}
		for _, t := range md.Topics {
			if t.Err.Code == 0 && len(t.Partitions) > 0 {
				counts[t.Name] = int32(len(t.Partitions))
			}
		}
	}
	plan := assign(resp.Protocol, members, counts)
	out := make([]wire.MemberAssignment, 0, len(members))
	for _, m := range members {
		out = append(out, wire.MemberAssignment{MemberID: m.id, Assignment: encodeAssignment(plan[m.id])})
	}
	return out, nil
}

// start installs an assignment: committed offsets where the group has
// them, StartOffset elsewhere.
func (k *Consumer) start(gen int32, assigned map[string][]int32) error {
	ctx, cancel := context.WithTimeout(k.ctx, k.c.cfg.requestTimeout)
	defer cancel()
	var tps []wire.TopicPartition
	for t, ps := range assigned {
		for _, p := range ps {
			tps = append(tps, wire.TopicPartition{Topic: t, Partition: p})
		}
	}
	committed := map[topicPart]int64{}
	if len(tps) > 0 {
		var resp wire.OffsetFetchResponse
		if err := k.c.roundTrip(ctx, &wire.OffsetFetchRequest{Group: k.cfg.group, Partitions: tps}, &resp); err != nil {
			return err
		}
		if err := checkErr(resp.Err); err != nil {
			return err
		}
		for _, o := range resp.Offsets {
			committed[topicPart{o.Topic, o.Partition}] = o.Offset
		}
	}
	offs, err := k.startOffsets(ctx, assigned, committed)
	if err != nil {
		return err
	}
	counts, err := k.subscriptionCounts(ctx)
	if err != nil {
		return err
	}
	k.install(assigned, offs, gen)
	k.mu.Lock()
	k.topicCounts = counts
	for tp, off := range committed {
		if cp := k.parts[tp]; cp != nil {
			cp.committed = off
		}
	}
	k.mu.Unlock()
	k.c.cfg.logger.Debug("assigned", "group", k.cfg.group, "generation", gen, "partitions", assigned)
	return nil
}

// metadataCheck is how often a member compares its subscription's
// partition counts with those of its last join (a variable for tests).
var metadataCheck = 10 * time.Second

// subscriptionCounts returns the partition count of each subscribed topic
// that exists.
func (k *Consumer) subscriptionCounts(ctx context.Context) (map[string]int32, error) {
	md, err := k.c.metadata(ctx, k.cfg.topics, false)
	if err != nil {
		return nil, err
	}
	out := map[string]int32{}
	for _, t := range md.Topics {
		if t.Err.Code == 0 {
			out[t.Name] = int32(len(t.Partitions))
		}
	}
	return out, nil
}

// stable heartbeats and auto-commits until the member must rejoin: the
// coordinator says so, or a subscribed topic appeared or grew (the member
// then rejoins with new metadata, which makes the group rebalance).
func (k *Consumer) stable(gen int32) {
	hb := time.NewTicker(k.cfg.heartbeatInterval)
	defer hb.Stop()
	mdt := time.NewTicker(metadataCheck)
	defer mdt.Stop()
	var commitC <-chan time.Time
	if k.cfg.autoCommit {
		t := time.NewTicker(k.cfg.autoCommitInterval)
		defer t.Stop()
		commitC = t.C
	}
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-commitC:
			ctx, cancel := context.WithTimeout(k.ctx, k.c.cfg.requestTimeout)
			if err := k.commitProcessed(ctx); err != nil && k.ctx.Err() == nil {
				k.c.cfg.logger.Debug("auto-commit failed", "group", k.cfg.group, "err", err)
			}
			cancel()
		case <-mdt.C:
			ctx, cancel := context.WithTimeout(k.ctx, k.c.cfg.requestTimeout)
			counts, err := k.subscriptionCounts(ctx)
			cancel()
			k.mu.Lock()
			changed := err == nil && !maps.Equal(counts, k.topicCounts)
			k.mu.Unlock()
			if changed {
				k.c.cfg.logger.Info("subscribed topics changed; rejoining", "group", k.cfg.group, "partitions", counts)
				k.revokeWithApp()
				return
			}
		case <-hb.C:
			k.mu.Lock()
			member := k.memberID
			k.mu.Unlock()
			ctx, cancel := context.WithTimeout(k.ctx, k.c.cfg.requestTimeout)
			err := k.c.simple(ctx, &wire.HeartbeatRequest{Group: k.cfg.group, MemberID: member,
				InstanceID: k.cfg.instanceID, Generation: gen})
			cancel()
			switch {
			case err == nil:
			case errors.Is(err, kerr.RebalanceInProgress):
				k.revokeWithApp()
				return
			case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.IllegalGeneration),
				errors.Is(err, kerr.FencedInstanceID):
				// No longer part of the generation: commits would fail.
				k.c.cfg.logger.Info("lost group membership; rejoining", "group", k.cfg.group, "err", err)
				if errors.Is(err, kerr.UnknownMemberID) {
					k.setMember("")
				}
				k.mu.Lock()
				k.generation = -1
				k.mu.Unlock()
				k.revokeNow()
				return
			default:
				if k.ctx.Err() != nil {
					return
				}
				k.c.cfg.logger.Debug("heartbeat failed", "group", k.cfg.group, "err", err)
			}
		}
	}
}

// revokeWithApp asks the application's goroutine to revoke the assignment
// at its next Poll or record, which commits exactly what it processed; if
// it does not within half a session timeout (busy with a record), the
// group goroutine revokes on its own.
func (k *Consumer) revokeWithApp() {
	req := make(chan struct{})
	k.mu.Lock()
	k.revokeReq = req
	k.mu.Unlock()
	k.revoking.Store(true)
	k.wakeApp()
	t := time.NewTimer(k.cfg.sessionTimeout / 2)
	defer t.Stop()
	select {
	case <-req:
	case <-t.C:
		k.revoke(req)
	case <-k.ctx.Done():
	}
}

// revokeNow revokes from the group goroutine.
func (k *Consumer) revokeNow() {
	req := make(chan struct{})
	k.mu.Lock()
	k.revokeReq = req
	k.mu.Unlock()
	k.revoke(req)
}

// revoke drops the assignment (once per request): commit what was
// processed (with auto-commit and a live generation), stop fetching, call
// OnRevoked.
func (k *Consumer) revoke(req chan struct{}) {
	k.mu.Lock()
	if k.revokeReq != req {
		k.mu.Unlock()
		return
	}
	k.revokeReq = nil
	gen := k.generation
	k.mu.Unlock()
	if k.cfg.autoCommit && gen >= 0 {
		ctx, cancel := context.WithTimeout(k.ctx, k.c.cfg.requestTimeout)
		if err := k.commitProcessed(ctx); err != nil && k.ctx.Err() == nil {
			k.c.cfg.logger.Info("commit before rebalance failed", "group", k.cfg.group, "err", err)
		}
		cancel()
	}
	k.mu.Lock()
	revoked := map[string][]int32{}
	for tp, cp := range k.parts {
		cp.gone.Store(true)
		revoked[tp.topic] = append(revoked[tp.topic], tp.partition)
	}
	k.parts = map[topicPart]*cpart{}
	k.generation = -1
	k.restartSessionLocked()
	k.mu.Unlock()
	k.revoking.Store(false)
	if len(revoked) > 0 && k.cfg.onRevoked != nil {
		k.cfg.onRevoked(revoked)
	}
	close(req)
}
