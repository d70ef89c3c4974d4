// Package group is wisp's consumer-group coordinator and durable
// committed-offsets store, frontend-agnostic: the Kafka wire listener and the
// native QUIC protocol are thin adapters onto one *Coordinator.
//
// It speaks Kafka's classic group protocol. Assignment is client-side: the
// coordinator collects each member's protocols and metadata, picks a
// protocol every member supports, picks a leader, hands the leader the
// member list in its JoinResponse and distributes the leader's assignments
// in Sync. Kafka members and wisp's own client (which encodes
// kmsg.ConsumerMemberMetadata under protocol type "consumer") share groups.
//
//	c, err := group.Open(cfg)
//	j, err := c.Join(ctx, group.JoinRequest{Group: "g", ProtocolType: "consumer",
//		Protocols: []group.Protocol{{Name: "range", Metadata: meta}},
//		SessionTimeout: 10 * time.Second, RebalanceTimeout: time.Minute})
//	var plan map[string][]byte // computed from j.Members when j.LeaderID == j.MemberID
//	mine, err := c.Sync(ctx, group.SyncRequest{Group: "g", MemberID: j.MemberID,
//		Generation: j.Generation, Assignments: plan})
//	err = c.Heartbeat("g", j.MemberID, "", j.Generation) // kerr.RebalanceInProgress: join again
//	err = c.CommitOffsets("g", j.MemberID, j.Generation, offsets)
//
// Errors wrap franz-go kerr values (test with errors.Is, or Code for the
// wire code), so every frontend answers with the same Kafka error codes.
//
// Durability: only committed offsets (and each group's protocol type) are
// journaled, not membership. After a restart every group is Empty; members
// learn it from kerr.UnknownMemberID or kerr.IllegalGeneration and join
// again, as Kafka clients do after a coordinator failover. Persisting
// membership, as Kafka's __consumer_offsets does, was rejected: a broker
// restart outlasts most sessions anyway, and a replayed stale generation is
// worse than a fresh rebalance.
//
// Concurrency: Coordinator.mu guards all group state and the timer heap; it
// is never held while waiting (blocked Joins and Syncs wait on channels) or
// across an fsync. The offsets store has its own lock, taken after
// Coordinator.mu when both are held. One timer goroutine and one journal
// flusher goroutine; Close stops and waits for both.
package group

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Protocol is one assignment protocol a member supports, in preference
// order within JoinRequest.Protocols, with the member's metadata for it.
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest is a JoinGroup.
type JoinRequest struct {
	Group, MemberID, InstanceID, ClientID, ClientHost, ProtocolType string
	// Protocols the member supports, most preferred first.
	Protocols []Protocol
	// SessionTimeout must lie within the configured bounds.
	// RebalanceTimeout <= 0 means SessionTimeout (JoinGroup v0).
	SessionTimeout, RebalanceTimeout time.Duration
	// RequireKnownMemberID (JoinGroup v4+): a join with an empty MemberID
	// fails with kerr.MemberIDRequired and the new id in
	// JoinResponse.MemberID; the member joins again with it.
	RequireKnownMemberID bool
}

// Member describes a member to the leader (JoinResponse.Members) and in
// DescribeGroup. Metadata is the member's metadata for the chosen protocol;
// Assignment is set only by DescribeGroup of a Stable group.
type Member struct {
	MemberID, InstanceID, ClientID, ClientHost string
	Metadata                                   []byte
	Assignment                                 []byte
}

// JoinResponse answers a Join. Members is set for the leader only. Byte
// slices in answers are shared with the coordinator: read, do not modify.
type JoinResponse struct {
	Generation                                 int32
	ProtocolType, Protocol, LeaderID, MemberID string
	Members                                    []Member
}

// SyncRequest is a SyncGroup. Assignments (member id -> assignment) are
// read from the leader only; members it leaves out get an empty assignment.
// ProtocolType and Protocol, when set, must match the group's.
type SyncRequest struct {
	Group, MemberID, InstanceID, ProtocolType, Protocol string
	Generation                                          int32
	Assignments                                         map[string][]byte
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// OffsetCommit is a committed offset.
type OffsetCommit struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// GroupSummary is one entry of ListGroups.
type GroupSummary struct {
	Group, ProtocolType, State string
}

// GroupDescription describes a group. Protocol, member metadata and
// assignments are filled in the Stable state only, as Kafka does.
type GroupDescription struct {
	Group, State, ProtocolType, Protocol string
	Generation                           int32
	Members                              []Member
}

// LeaveMember names a member leaving: by MemberID, or by InstanceID alone
// for a static member (LeaveGroup v3+).
type LeaveMember struct {
	MemberID, InstanceID string
}

// Coordinator runs the consumer groups of one broker and stores their
// committed offsets. It is safe for concurrent use.
type Coordinator struct {
	cfg      Config
	log      *slog.Logger
	store    *store
	now      func() time.Time
	openedAt time.Time

	// fenceMu makes the epoch check and the write of a fenced commit one
	// step (see FencedGroupPrefix); taken without mu held.
	fenceMu sync.Mutex

	mu     sync.Mutex
	groups map[string]*group
	timers timerHeap
	tok    uint64
	closed bool

	wake chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

// Open replays the offsets journal in cfg.Dir (cutting off a torn tail with
// a warning) and starts the coordinator.
func Open(cfg Config) (*Coordinator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := openStore(cfg.Dir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	st.replicate = cfg.Replicate
	c := &Coordinator{
		cfg:    cfg,
		log:    cfg.Logger,
		store:  st,
		now:    time.Now,
		groups: map[string]*group{},
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	c.openedAt = c.now()
	c.mu.Lock()
	c.armLocked(timerEvent{at: c.openedAt.Add(cfg.RetentionCheckInterval), kind: timerSweep})
	c.mu.Unlock()
	c.wg.Add(1)
	go c.runTimers()
	return c, nil
}

// Close fails blocked Joins and Syncs with ErrClosed, stops the timer and
// journal goroutines and waits for them, and compacts and closes the
// offsets journal. Later calls fail with ErrClosed.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for _, g := range c.groups {
		for _, m := range g.members {
			m.failJoin(ErrClosed)
			m.failSync(ErrClosed)
		}
	}
	close(c.done)
	c.mu.Unlock()
	c.wg.Wait()
	return c.store.close()
}

// Join joins a member to a group, creating the group if needed, and blocks
// until the rebalance completes: every known member joined again, or the
// largest RebalanceTimeout of the members passed (members that did not
// rejoin are then dropped). If ctx ends first Join returns ctx.Err(); the
// member stays joined, as a Kafka member whose response got lost does.
//
// Errors: kerr.InvalidGroupID, kerr.InvalidSessionTimeout,
// kerr.InconsistentGroupProtocol, kerr.UnknownMemberID,
// kerr.FencedInstanceID, kerr.MemberIDRequired (with the new member id in
// the response), kerr.CoordinatorNotAvailable once closed.
func (c *Coordinator) Join(ctx context.Context, req JoinRequest) (JoinResponse, error) {
	if req.Group == "" {
		return JoinResponse{}, fmt.Errorf("group: join: empty group id: %w", kerr.InvalidGroupID)
	}
	if req.SessionTimeout < c.cfg.MinSessionTimeout || req.SessionTimeout > c.cfg.MaxSessionTimeout {
		return JoinResponse{}, fmt.Errorf("group: join %q: session timeout %v not within [%v, %v]: %w",
			req.Group, req.SessionTimeout, c.cfg.MinSessionTimeout, c.cfg.MaxSessionTimeout, kerr.InvalidSessionTimeout)
	}
	if req.RebalanceTimeout <= 0 {
		req.RebalanceTimeout = req.SessionTimeout
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return JoinResponse{}, ErrClosed
	}
	res, ch, m := c.joinLocked(&req)
	c.mu.Unlock()
	if ch == nil {
		return res.resp, res.err
	}
	select {
	case r := <-ch:
		return r.resp, r.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	if m.joinCh == ch {
		m.joinCh = nil // the member stays joined; only the waiter goes
	}
	c.mu.Unlock()
	select {
	case r := <-ch: // answered while we gave up: the answer wins
		return r.resp, r.err
	default:
		return JoinResponse{}, ctx.Err()
	}
}

// Sync delivers the leader's assignments and returns the caller's own.
// A follower that arrives before the leader blocks until the leader syncs;
// if the leader does not within the rebalance timeout, the group rebalances
// and the follower gets kerr.RebalanceInProgress. If ctx ends first Sync
// returns ctx.Err().
//
// Errors: kerr.InvalidGroupID, kerr.UnknownMemberID, kerr.FencedInstanceID,
// kerr.IllegalGeneration, kerr.InconsistentGroupProtocol,
// kerr.RebalanceInProgress.
func (c *Coordinator) Sync(ctx context.Context, req SyncRequest) (assignment []byte, err error) {
	if req.Group == "" {
		return nil, fmt.Errorf("group: sync: empty group id: %w", kerr.InvalidGroupID)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	res, ch, m := c.syncLocked(&req)
	c.mu.Unlock()
	if ch == nil {
		return res.assignment, res.err
	}
	select {
	case r := <-ch:
		return r.assignment, r.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	if m.syncCh == ch {
		m.syncCh = nil
	}
	c.mu.Unlock()
	select {
	case r := <-ch:
		return r.assignment, r.err
	default:
		return nil, ctx.Err()
	}
}

// Heartbeat keeps a member's session alive. kerr.RebalanceInProgress tells
// the member to join again; kerr.UnknownMemberID, kerr.IllegalGeneration and
// kerr.FencedInstanceID that it is no longer part of this generation.
func (c *Coordinator) Heartbeat(group, memberID, instanceID string, generation int32) error {
	if group == "" {
		return fmt.Errorf("group: heartbeat: empty group id: %w", kerr.InvalidGroupID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	return c.heartbeatLocked(group, memberID, instanceID, generation)
}

// Leave removes members from a group, which then rebalances. It returns
// the first failure (kerr.UnknownMemberID for an id the group does not
// know); the other members still leave.
func (c *Coordinator) Leave(group string, memberIDs ...string) error {
	ms := make([]LeaveMember, len(memberIDs))
	for i, id := range memberIDs {
		ms[i].MemberID = id
	}
	for _, err := range c.LeaveMembers(group, ms) {
		if err != nil {
			return err
		}
	}
	return nil
}

// LeaveMembers is Leave with one error per member (LeaveGroup v3+), and
// static members named by instance id; kerr.FencedInstanceID when both are
// given and do not match. A whole-request failure (kerr.InvalidGroupID,
// ErrClosed) is repeated for every member.
func (c *Coordinator) LeaveMembers(group string, members []LeaveMember) []error {
	errs := make([]error, len(members))
	fill := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	if group == "" {
		return fill(fmt.Errorf("group: leave: empty group id: %w", kerr.InvalidGroupID))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fill(ErrClosed)
	}
	g := c.groups[group]
	if g == nil {
		return fill(fmt.Errorf("group: leave %q: no such group: %w", group, kerr.UnknownMemberID))
	}
	for i, lm := range members {
		errs[i] = c.leaveLocked(g, lm.MemberID, lm.InstanceID)
	}
	return errs
}

// CommitOffsets stores offsets for a group durably (fsynced, batched with
// concurrent commits) before it returns.
//
// A member commits with its id and generation. generation -1 with an empty
// memberID is a simple commit by a consumer that does not use group
// management, allowed only while the group has no members, as in Kafka.
// Errors: kerr.InvalidGroupID, kerr.IllegalGeneration,
// kerr.UnknownMemberID, kerr.RebalanceInProgress (the group is waiting for
// the leader's assignments), kerr.OffsetMetadataTooLarge (nothing is
// committed then), kerr.CoordinatorNotAvailable (closed, or the journal
// failed).
func (c *Coordinator) CommitOffsets(group, memberID string, generation int32, offsets map[TopicPartition]OffsetCommit) error {
	return c.CommitOffsetsInstance(group, memberID, "", generation, offsets)
}

// CommitOffsetsInstance is CommitOffsets for a static member naming its
// instance id (OffsetCommit v7+): a commit from a replaced incarnation gets
// kerr.FencedInstanceID.
func (c *Coordinator) CommitOffsetsInstance(group, memberID, instanceID string, generation int32, offsets map[TopicPartition]OffsetCommit) error {
	if group == "" {
		return fmt.Errorf("group: commit: empty group id: %w", kerr.InvalidGroupID)
	}
	for tp, oc := range offsets {
		if len(oc.Metadata) > c.cfg.MaxOffsetMetadata {
			return fmt.Errorf("group: commit %q: %s/%d: metadata of %d bytes (max %d): %w",
				group, tp.Topic, tp.Partition, len(oc.Metadata), c.cfg.MaxOffsetMetadata, kerr.OffsetMetadataTooLarge)
		}
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	protocolType, err := c.validateCommitLocked(group, memberID, instanceID, generation)
	nowMs := c.now().UnixMilli()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if len(offsets) == 0 {
		return nil
	}
	if generation < 0 && memberID == "" && strings.HasPrefix(group, FencedGroupPrefix) {
		c.fenceMu.Lock()
		defer c.fenceMu.Unlock()
		if err := c.checkFenceLocked(group, offsets); err != nil {
			return err
		}
	}
	recs := make([]record, 0, len(offsets)+1)
	if r, ok := c.store.typeRecord(group, protocolType); ok {
		recs = append(recs, r)
	}
	for _, tp := range slices.SortedFunc(maps.Keys(offsets), compareTP) {
		oc := offsets[tp]
		recs = append(recs, record{kind: recCommit, group: group, topic: tp.Topic, partition: tp.Partition,
			offset: oc.Offset, epoch: oc.LeaderEpoch, metadata: oc.Metadata, time: nowMs})
	}
	if err := c.store.write(recs); err != nil {
		return fmt.Errorf("group: commit %q: %w", group, err)
	}
	return nil
}

// FencedGroupPrefix starts the names of the groups whose commits outside
// any generation are fenced by leader epoch: wisp's function workers
// (group "wisp.fn.<function>") commit with the leader epoch their input
// partition had when they started, and a commit carrying an older epoch
// than the one stored for that partition fails with
// kerr.FencedLeaderEpoch. A worker on a deposed leader that has not yet
// noticed (paused, cut off) thus cannot overwrite the progress of the
// worker that replaced it on the new leader. A commit with epoch -1 (a
// reset from the CLI or a Kafka tool) is never fenced.
const FencedGroupPrefix = "wisp.fn."

// checkFenceLocked refuses offsets carrying a leader epoch older than the
// one committed. Called with fenceMu held.
func (c *Coordinator) checkFenceLocked(group string, offsets map[TopicPartition]OffsetCommit) error {
	tps := slices.Collect(maps.Keys(offsets))
	stored := c.store.fetch(group, tps)
	for tp, oc := range offsets {
		if s, ok := stored[tp]; ok && oc.LeaderEpoch >= 0 && s.LeaderEpoch > oc.LeaderEpoch {
			return fmt.Errorf("group: commit %q: %s/%d: leader epoch %d is older than the committed %d: %w",
				group, tp.Topic, tp.Partition, oc.LeaderEpoch, s.LeaderEpoch, kerr.FencedLeaderEpoch)
		}
	}
	return nil
}

// validateCommitLocked applies Kafka's commit rules and returns the group's
// protocol type.
func (c *Coordinator) validateCommitLocked(name, memberID, instanceID string, generation int32) (string, error) {
	fail := func(what string, err error) (string, error) {
		return "", fmt.Errorf("group: commit %q: %s: %w", name, what, err)
	}
	g := c.groups[name]
	if g == nil {
		if generation < 0 {
			return "", nil // group-less consumer
		}
		return fail(fmt.Sprintf("generation %d of a group with no members", generation), kerr.IllegalGeneration)
	}
	if id, ok := g.static[instanceID]; ok && instanceID != "" && id != memberID {
		return fail("instance "+instanceID+" member "+memberID, kerr.FencedInstanceID)
	}
	switch {
	case generation < 0 && g.state == stateEmpty:
		return g.protocolType, nil
	case g.state == stateCompletingRebalance:
		return fail("waiting for the leader's assignments", kerr.RebalanceInProgress)
	}
	m := g.members[memberID]
	switch {
	case m == nil:
		return fail("member "+memberID, kerr.UnknownMemberID)
	case generation != g.generation:
		return fail(fmt.Sprintf("generation %d, current %d", generation, g.generation), kerr.IllegalGeneration)
	}
	c.touchLocked(g, m, c.now())
	return g.protocolType, nil
}

// FetchOffsets returns the committed offsets of group for tps, or all of
// the group's when tps is nil. Partitions without a committed offset are
// absent from the map; an unknown group gives an empty map.
func (c *Coordinator) FetchOffsets(group string, tps []TopicPartition) (map[TopicPartition]OffsetCommit, error) {
	if group == "" {
		return nil, fmt.Errorf("group: fetch offsets: empty group id: %w", kerr.InvalidGroupID)
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	return c.store.fetch(group, tps), nil
}

// DeleteOffsets forgets committed offsets of a group (OffsetDelete). It
// returns the group error, or else the first partition error, of
// DeleteOffsetsDetail.
func (c *Coordinator) DeleteOffsets(group string, tps []TopicPartition) error {
	perTP, err := c.DeleteOffsetsDetail(group, tps)
	if err != nil {
		return err
	}
	for _, tp := range tps {
		if err := perTP[tp]; err != nil {
			return err
		}
	}
	return nil
}

// DeleteOffsetsDetail forgets committed offsets with Kafka's per-partition
// answer: while a "consumer" group has members, partitions of topics they
// subscribe to are kept and get kerr.GroupSubscribedToTopic; the others are
// deleted. The group error is kerr.GroupIDNotFound for an unknown group and
// kerr.NonEmptyGroup for a non-consumer group with members.
func (c *Coordinator) DeleteOffsetsDetail(group string, tps []TopicPartition) (map[TopicPartition]error, error) {
	if group == "" {
		return nil, fmt.Errorf("group: delete offsets: empty group id: %w", kerr.InvalidGroupID)
	}
	perTP := map[TopicPartition]error{}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	g := c.groups[group]
	_, stored := c.store.groupInfo(group)
	if (g == nil || !g.formed()) && !stored {
		c.mu.Unlock()
		return nil, fmt.Errorf("group: delete offsets %q: %w", group, kerr.GroupIDNotFound)
	}
	var recs []record
	if g != nil && len(g.members) > 0 {
		if g.protocolType != "consumer" {
			c.mu.Unlock()
			return nil, fmt.Errorf("group: delete offsets %q: group has members: %w", group, kerr.NonEmptyGroup)
		}
		subscribed := g.subscribedTopics()
		for _, tp := range tps {
			if subscribed == nil || subscribed[tp.Topic] {
				perTP[tp] = fmt.Errorf("group: delete offsets %q: %s/%d: %w", group, tp.Topic, tp.Partition, kerr.GroupSubscribedToTopic)
			}
		}
	}
	for _, tp := range tps {
		if perTP[tp] == nil {
			perTP[tp] = nil
			recs = append(recs, record{kind: recDelete, group: group, topic: tp.Topic, partition: tp.Partition})
		}
	}
	c.mu.Unlock()
	if err := c.store.write(recs); err != nil {
		return nil, fmt.Errorf("group: delete offsets %q: %w", group, err)
	}
	return perTP, nil
}

// DeleteGroups deletes groups without members and their committed offsets.
// The map has an entry per requested group: nil on success,
// kerr.NonEmptyGroup while it has members, kerr.GroupIDNotFound when
// unknown, kerr.InvalidGroupID for "".
func (c *Coordinator) DeleteGroups(groups ...string) map[string]error {
	out := make(map[string]error, len(groups))
	var recs []record
	c.mu.Lock()
	for _, name := range groups {
		g := c.groups[name]
		_, stored := c.store.groupInfo(name)
		switch {
		case c.closed:
			out[name] = ErrClosed
		case name == "":
			out[name] = fmt.Errorf("group: delete group: empty group id: %w", kerr.InvalidGroupID)
		case (g == nil || !g.formed()) && !stored:
			out[name] = fmt.Errorf("group: delete group %q: %w", name, kerr.GroupIDNotFound)
		case g != nil && (len(g.members) > 0 || g.state != stateEmpty):
			out[name] = fmt.Errorf("group: delete group %q: %d members: %w", name, len(g.members), kerr.NonEmptyGroup)
		default:
			delete(c.groups, name)
			out[name] = nil
			if stored {
				recs = append(recs, record{kind: recDeleteGroup, group: name})
			}
		}
	}
	c.mu.Unlock()
	if err := c.store.write(recs); err != nil {
		for _, r := range recs {
			out[r.group] = fmt.Errorf("group: delete group %q: %w", r.group, err)
		}
	}
	return out
}

// ListGroups lists the groups, sorted by name: those with members or a
// past generation, and those with committed offsets only (state Empty).
func (c *Coordinator) ListGroups() []GroupSummary {
	c.mu.Lock()
	defer c.mu.Unlock()
	types := c.store.groupTypes()
	out := make([]GroupSummary, 0, len(c.groups)+len(types))
	seen := map[string]bool{}
	for name, g := range c.groups {
		if !g.formed() {
			continue
		}
		seen[name] = true
		out = append(out, GroupSummary{Group: name, ProtocolType: g.protocolType, State: g.state.String()})
	}
	for name, pt := range types {
		if !seen[name] {
			out = append(out, GroupSummary{Group: name, ProtocolType: pt, State: StateEmpty})
		}
	}
	slices.SortFunc(out, func(a, b GroupSummary) int { return cmp.Compare(a.Group, b.Group) })
	return out
}

// DescribeGroup describes a group. An unknown group is described as Dead
// with no error, as Kafka does.
func (c *Coordinator) DescribeGroup(group string) (GroupDescription, error) {
	if group == "" {
		return GroupDescription{}, fmt.Errorf("group: describe: empty group id: %w", kerr.InvalidGroupID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return GroupDescription{}, ErrClosed
	}
	g := c.groups[group]
	if g == nil || !g.formed() {
		if pt, ok := c.store.groupInfo(group); ok {
			return GroupDescription{Group: group, State: StateEmpty, ProtocolType: pt}, nil
		}
		return GroupDescription{Group: group, State: StateDead}, nil
	}
	d := GroupDescription{Group: group, State: g.state.String(), ProtocolType: g.protocolType, Generation: g.generation}
	stable := g.state == stateStable
	if stable {
		d.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		dm := Member{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost}
		if stable {
			dm.Metadata = m.metadataFor(g.protocol)
			dm.Assignment = m.assignment
		}
		d.Members = append(d.Members, dm)
	}
	return d, nil
}

// DropTopic forgets the committed offsets of a deleted topic in every
// group. Failures are logged: the topic is gone either way.
func (c *Coordinator) DropTopic(topic string) {
	// In a cluster only the coordinator writes; the others are told no.
	if err := c.store.write([]record{{kind: recDropTopic, topic: topic}}); err != nil && !errors.Is(err, ErrClosed) &&
		!errors.Is(err, kerr.NotCoordinator) {
		c.log.Warn("group: forgetting offsets of deleted topic", "topic", topic, "err", err)
	}
}

// sweep expires the offsets of groups that have been without members for
// the retention period and forgets groups with neither members nor
// offsets. It runs on the timer goroutine, writing without c.mu.
func (c *Coordinator) sweep() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	now := c.now()
	cutoff := now.Add(-c.cfg.OffsetsRetention)
	types := c.store.groupTypes()
	var recs []record
	for name := range types {
		g := c.groups[name]
		if g != nil && (len(g.members) > 0 || len(g.pending) > 0) {
			continue
		}
		// Offsets of a group expire counting from the later of their commit
		// and the moment the group became empty. When it became empty before
		// this process started is unknown, so Open counts as that moment.
		since := c.openedAt
		if g != nil && g.emptySince.After(since) {
			since = g.emptySince
		}
		if since.After(cutoff) {
			continue
		}
		// The record removes only offsets committed at or before the
		// cutoff, so a commit racing with this sweep survives it.
		if c.store.expirable(name, cutoff.UnixMilli()) {
			recs = append(recs, record{kind: recExpire, group: name, time: cutoff.UnixMilli()})
		}
	}
	for name, g := range c.groups {
		if _, stored := types[name]; !stored && len(g.members) == 0 && len(g.pending) == 0 && g.state == stateEmpty {
			delete(c.groups, name)
		}
	}
	c.armLocked(timerEvent{at: now.Add(c.cfg.RetentionCheckInterval), kind: timerSweep})
	c.mu.Unlock()
	if len(recs) > 0 {
		c.log.Info("group: expiring offsets of empty groups", "groups", len(recs), "retention", c.cfg.OffsetsRetention)
	}
	if err := c.store.write(recs); err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, kerr.NotCoordinator) {
		c.log.Warn("group: expiring offsets", "err", err)
	}
}
