package group

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file is the membership state machine of one group, Kafka's classic
// protocol. Every function here runs under Coordinator.mu (hence Locked) and
// does no I/O: events (a join, a sync, a heartbeat, a leave, a timer) change
// the state, wake waiters through buffered channels (a send never blocks)
// and arm timers on the coordinator's heap.
//
//	Empty ──join──▶ PreparingRebalance ──all known members joined, or
//	  ▲                 ▲     │           the rebalance timeout──▶ CompletingRebalance
//	  │                 │     │                                      │ leader syncs
//	  └─last member─────┴─────┘◀── join with new metadata, leave, ───┴──▶ Stable
//	    gone (generation+1)        expiry, leader sync timeout
//
// A rebalance round: PreparingRebalance waits for every member to (re)join;
// a member that has joined the round counts as alive whatever its session
// timer says. When the round closes, dynamic members that did not rejoin are
// dropped (static ones stay until their session expires), the generation is
// bumped, a protocol is chosen by vote, and every joined member gets its
// answer, the leader with the member list. CompletingRebalance waits for the
// leader's SyncGroup with the assignments; followers' Syncs wait for it.

// groupState is a group's state, named as Kafka names it.
type groupState int8

const (
	stateEmpty groupState = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

// State names as DescribeGroup and ListGroups report them.
const (
	StateEmpty               = "Empty"
	StatePreparingRebalance  = "PreparingRebalance"
	StateCompletingRebalance = "CompletingRebalance"
	StateStable              = "Stable"
	StateDead                = "Dead"
)

func (s groupState) String() string {
	switch s {
	case stateEmpty:
		return StateEmpty
	case statePreparingRebalance:
		return StatePreparingRebalance
	case stateCompletingRebalance:
		return StateCompletingRebalance
	case stateStable:
		return StateStable
	default:
		return StateDead
	}
}

type joinResult struct {
	resp JoinResponse
	err  error
}

type syncResult struct {
	assignment []byte
	err        error
}

// member is one group member.
type member struct {
	id, instanceID       string
	clientID, clientHost string
	protocols            []Protocol
	session, rebalance   time.Duration
	assignment           []byte
	order                uint64 // join order, for stable member lists
	removed              bool
	joined               bool            // joined the current PreparingRebalance round
	joinCh               chan joinResult // a blocked Join, or nil
	syncCh               chan syncResult // a blocked Sync, or nil
	deadline             time.Time       // session expiry, pushed by heartbeats
	timerTok             uint64          // the armed session timer
	timerAt              time.Time       // when it fires
}

// group is the coordinator's state for one group.
type group struct {
	name         string
	state        groupState
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	static       map[string]string // instance id -> member id
	pending      map[string]uint64 // ids given out with MemberIDRequired -> their timer token
	emptySince   time.Time

	rebalanceTok   uint64 // armed rebalance timer, 0 when none
	syncTok        uint64 // armed leader-sync timer, 0 when none
	initialDelay   bool   // the rebalance timer is the initial delay
	delayLimit     time.Time
	newMemberAdded bool
}

func newGroup(name string, now time.Time) *group {
	return &group{
		name:       name,
		state:      stateEmpty,
		members:    map[string]*member{},
		static:     map[string]string{},
		pending:    map[string]uint64{},
		emptySince: now,
	}
}

// newMemberID returns prefix-<uuid v4>, as Kafka forms member ids.
func newMemberID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return prefix + "-" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// sortedMembers returns the members in join order.
func (g *group) sortedMembers() []*member {
	ms := slices.Collect(maps.Values(g.members))
	slices.SortFunc(ms, func(a, b *member) int { return cmp.Compare(a.order, b.order) })
	return ms
}

func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalance)
	}
	return d
}

// formed reports whether the group is more than a failed first join: it
// has or had members.
func (g *group) formed() bool {
	return len(g.members) > 0 || len(g.pending) > 0 || g.generation > 0
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

func (m *member) supports(protocol string) bool {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return true
		}
	}
	return false
}

// sameProtocols reports whether ps equals the member's protocols, names,
// order and metadata.
func (m *member) sameProtocols(ps []Protocol) bool {
	return slices.EqualFunc(m.protocols, ps, func(a, b Protocol) bool {
		return a.Name == b.Name && string(a.Metadata) == string(b.Metadata)
	})
}

func (m *member) update(req *JoinRequest) {
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	// Copies: a frontend may decode requests into buffers it reuses.
	m.protocols = make([]Protocol, len(req.Protocols))
	for i, p := range req.Protocols {
		m.protocols[i] = Protocol{Name: p.Name, Metadata: slices.Clone(p.Metadata)}
	}
	m.session, m.rebalance = req.SessionTimeout, req.RebalanceTimeout
}

// failJoin and failSync answer a blocked Join or Sync with err.
func (m *member) failJoin(err error) {
	if m.joinCh != nil {
		m.joinCh <- joinResult{resp: JoinResponse{Generation: -1, MemberID: m.id}, err: err}
		m.joinCh = nil
	}
}

func (m *member) failSync(err error) {
	if m.syncCh != nil {
		m.syncCh <- syncResult{err: err}
		m.syncCh = nil
	}
}

// supportsProtocols reports whether a member (memberID, empty for a new one)
// may join with protocolType and protocols: the first member sets the
// protocol type, and everyone else must share it and at least one protocol
// with every other member. Unlike Kafka, the joiner's own old protocols do
// not count, so a sole member may change its protocols.
func (g *group) supportsProtocols(memberID, protocolType string, protocols []Protocol) bool {
	if protocolType == "" || len(protocols) == 0 {
		return false
	}
	others := len(g.members)
	if _, ok := g.members[memberID]; ok {
		others--
	}
	if others == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		all := true
		for id, m := range g.members {
			if id != memberID && !m.supports(p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol every member supports that most members
// prefer: each votes for its first supported candidate, as Kafka does; ties
// go to the earlier protocol in the first member's list.
func (g *group) selectProtocol() string {
	ms := g.sortedMembers()
	if len(ms) == 0 {
		return ""
	}
	var candidates []string
	for _, p := range ms[0].protocols {
		all := true
		for _, m := range ms[1:] {
			if !m.supports(p.Name) {
				all = false
				break
			}
		}
		if all && !slices.Contains(candidates, p.Name) {
			candidates = append(candidates, p.Name)
		}
	}
	if len(candidates) == 0 {
		return ""
	}
	votes := map[string]int{}
	for _, m := range ms {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := candidates[0]
	for _, c := range candidates[1:] {
		if votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

// subscribedTopics returns the topics consumer-protocol members subscribe
// to, or nil when a member's metadata cannot be read (then every topic
// counts as subscribed, as in Kafka).
func (g *group) subscribedTopics() map[string]bool {
	topics := map[string]bool{}
	for _, m := range g.members {
		meta := m.metadataFor(g.protocol)
		if g.protocol == "" && len(m.protocols) > 0 {
			meta = m.protocols[0].Metadata
		}
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(meta); err != nil {
			return nil
		}
		for _, t := range md.Topics {
			topics[t] = true
		}
	}
	return topics
}

// memberList is what the leader gets: every member with its metadata for
// the chosen protocol.
func (g *group) memberList() []Member {
	ms := g.sortedMembers()
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, Member{
			MemberID:   m.id,
			InstanceID: m.instanceID,
			ClientID:   m.clientID,
			ClientHost: m.clientHost,
			Metadata:   m.metadataFor(g.protocol),
		})
	}
	return out
}

// joinResponse is a member's answer for the current generation.
func (g *group) joinResponse(m *member) JoinResponse {
	r := JoinResponse{
		Generation:   g.generation,
		ProtocolType: g.protocolType,
		Protocol:     g.protocol,
		LeaderID:     g.leader,
		MemberID:     m.id,
	}
	if m.id == g.leader {
		r.Members = g.memberList()
	}
	return r
}

func joinErr(group, what string, err error) error {
	return fmt.Errorf("group: join %q: %s: %w", group, what, err)
}

// joinLocked runs a JoinGroup. It returns either an immediate result, or a
// channel that gets the result when the rebalance completes together with
// the member that owns the channel.
func (c *Coordinator) joinLocked(req *JoinRequest) (joinResult, chan joinResult, *member) {
	g := c.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			return joinResult{err: joinErr(req.Group, "member "+req.MemberID, kerr.UnknownMemberID)}, nil, nil
		}
		g = newGroup(req.Group, c.now())
		c.groups[req.Group] = g
	}
	if !g.supportsProtocols(req.MemberID, req.ProtocolType, req.Protocols) {
		return joinResult{err: joinErr(g.name, fmt.Sprintf("protocol type %q with %d protocols", req.ProtocolType, len(req.Protocols)),
			kerr.InconsistentGroupProtocol)}, nil, nil
	}
	switch {
	case req.MemberID == "" && req.InstanceID != "":
		return c.joinNewStaticLocked(g, req)
	case req.MemberID == "":
		id := newMemberID(cmp.Or(req.ClientID, "member"))
		if req.RequireKnownMemberID {
			// The member must come back with this id; until it does or its
			// session timeout passes, a rebalance waits for it too.
			tok := c.nextTokLocked()
			g.pending[id] = tok
			c.armLocked(timerEvent{at: c.now().Add(req.SessionTimeout), kind: timerPending, g: g, id: id, tok: tok})
			return joinResult{resp: JoinResponse{Generation: -1, MemberID: id},
				err: joinErr(g.name, "new member "+id, kerr.MemberIDRequired)}, nil, nil
		}
		return c.addMemberLocked(g, id, req)
	}
	if _, ok := g.pending[req.MemberID]; ok {
		if req.InstanceID != "" {
			if _, taken := g.static[req.InstanceID]; taken {
				return joinResult{err: joinErr(g.name, "instance "+req.InstanceID, kerr.FencedInstanceID)}, nil, nil
			}
		}
		delete(g.pending, req.MemberID)
		return c.addMemberLocked(g, req.MemberID, req)
	}
	return c.joinExistingLocked(g, req)
}

// addMemberLocked adds a new member that has joined this round.
func (c *Coordinator) addMemberLocked(g *group, id string, req *JoinRequest) (joinResult, chan joinResult, *member) {
	now := c.now()
	m := &member{
		id:         id,
		instanceID: req.InstanceID,
		order:      c.nextTokLocked(),
		joined:     true,
		joinCh:     make(chan joinResult, 1),
	}
	m.update(req)
	g.members[id] = m
	if m.instanceID != "" {
		g.static[m.instanceID] = id
	}
	g.protocolType = req.ProtocolType
	c.touchLocked(g, m, now)
	if g.state == statePreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	c.log.Debug("group: member joined", "group", g.name, "member", id, "instance", m.instanceID, "client", m.clientID)
	ch := m.joinCh
	c.maybePrepareRebalanceLocked(g, "member "+id+" joined")
	c.tryCompleteJoinLocked(g)
	return joinResult{}, ch, m
}

// joinNewStaticLocked handles a static member (instance id) joining without
// a member id: a first join adds it; a rejoin replaces the old member id,
// fencing the old incarnation, and keeps its assignment. In a Stable group,
// when its protocols and metadata are unchanged, that needs no rebalance:
// the answer names the old leader id, so a rejoining leader does not think
// it must assign again, and its Sync returns the assignment it had. (Kafka
// also skips the rebalance when only the metadata changed, so a restarted
// static member with a new subscription was never reassigned; wisp
// rebalances then.)
func (c *Coordinator) joinNewStaticLocked(g *group, req *JoinRequest) (joinResult, chan joinResult, *member) {
	newID := newMemberID(req.InstanceID)
	oldID, ok := g.static[req.InstanceID]
	if !ok {
		return c.addMemberLocked(g, newID, req)
	}
	m := g.members[oldID]
	fenced := fmt.Errorf("group: %q: instance %q rejoined as %s: %w", g.name, req.InstanceID, newID, kerr.FencedInstanceID)
	m.failJoin(fenced)
	m.failSync(fenced)
	oldLeader := g.leader
	delete(g.members, oldID)
	m.id = newID
	g.members[newID] = m
	g.static[req.InstanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	unchanged := m.sameProtocols(req.Protocols)
	m.update(req)
	g.protocolType = req.ProtocolType
	c.touchLocked(g, m, c.now())
	c.log.Info("group: static member rejoined", "group", g.name, "instance", req.InstanceID, "old", oldID, "new", newID)

	if g.state == stateStable && unchanged && g.selectProtocol() == g.protocol {
		resp := g.joinResponse(m)
		resp.LeaderID, resp.Members = oldLeader, nil
		return joinResult{resp: resp}, nil, m
	}
	m.joined = true
	m.joinCh = make(chan joinResult, 1)
	ch := m.joinCh
	c.maybePrepareRebalanceLocked(g, "static member "+req.InstanceID+" rejoined")
	c.tryCompleteJoinLocked(g)
	return joinResult{}, ch, m
}

// joinExistingLocked handles a join from a known member.
func (c *Coordinator) joinExistingLocked(g *group, req *JoinRequest) (joinResult, chan joinResult, *member) {
	if req.InstanceID != "" {
		if id, ok := g.static[req.InstanceID]; ok && id != req.MemberID {
			return joinResult{err: joinErr(g.name, "instance "+req.InstanceID+" member "+req.MemberID, kerr.FencedInstanceID)}, nil, nil
		}
	}
	m := g.members[req.MemberID]
	if m == nil {
		return joinResult{err: joinErr(g.name, "member "+req.MemberID, kerr.UnknownMemberID)}, nil, nil
	}
	c.touchLocked(g, m, c.now())
	switch g.state {
	case stateCompletingRebalance:
		if m.sameProtocols(req.Protocols) {
			// A retry of a join whose answer was lost: answer again.
			return joinResult{resp: g.joinResponse(m)}, nil, m
		}
	case stateStable:
		if m.id != g.leader && m.sameProtocols(req.Protocols) {
			return joinResult{resp: g.joinResponse(m)}, nil, m
		}
	}
	// Preparing, or new metadata, or the leader asking for a rebalance.
	m.update(req)
	g.protocolType = req.ProtocolType
	c.touchLocked(g, m, c.now())
	m.failJoin(fmt.Errorf("group: %q: member %s joined again: %w", g.name, m.id, kerr.RebalanceInProgress))
	m.joined = true
	m.joinCh = make(chan joinResult, 1)
	ch := m.joinCh
	c.maybePrepareRebalanceLocked(g, "member "+m.id+" rejoined")
	c.tryCompleteJoinLocked(g)
	return joinResult{}, ch, m
}

// maybePrepareRebalanceLocked starts a rebalance unless one is under way.
func (c *Coordinator) maybePrepareRebalanceLocked(g *group, reason string) {
	switch g.state {
	case stateEmpty, stateStable, stateCompletingRebalance:
		c.prepareRebalanceLocked(g, reason)
	}
}

// prepareRebalanceLocked moves g to PreparingRebalance: assignments handed
// out in CompletingRebalance are void, blocked Syncs learn to rejoin, and
// the rebalance timer starts (the initial delay for an empty group).
func (c *Coordinator) prepareRebalanceLocked(g *group, reason string) {
	if g.state == stateCompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			m.failSync(fmt.Errorf("group: %q: %s: %w", g.name, reason, kerr.RebalanceInProgress))
		}
	}
	g.syncTok = 0
	now := c.now()
	timeout := g.maxRebalanceTimeout()
	wait := timeout
	g.initialDelay = g.state == stateEmpty && c.cfg.InitialRebalanceDelay > 0
	if g.initialDelay {
		g.newMemberAdded = false
		g.delayLimit = now.Add(timeout)
		wait = min(c.cfg.InitialRebalanceDelay, timeout)
	}
	g.state = statePreparingRebalance
	g.rebalanceTok = c.nextTokLocked()
	c.armLocked(timerEvent{at: now.Add(wait), kind: timerRebalance, g: g, tok: g.rebalanceTok})
	c.log.Info("group: preparing rebalance", "group", g.name, "generation", g.generation, "reason", reason)
	c.tryCompleteJoinLocked(g)
}

// tryCompleteJoinLocked closes the round once every known member joined.
func (c *Coordinator) tryCompleteJoinLocked(g *group) {
	if g.state != statePreparingRebalance || g.initialDelay || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if !m.joined {
			return
		}
	}
	c.completeJoinLocked(g)
}

// completeJoinLocked closes the round (all joined, or the timer fired).
func (c *Coordinator) completeJoinLocked(g *group) {
	now := c.now()
	g.rebalanceTok, g.initialDelay = 0, false
	for _, m := range g.sortedMembers() {
		if !m.joined && m.instanceID == "" {
			c.log.Info("group: dropping member that did not rejoin", "group", g.name, "member", m.id)
			c.dropMemberLocked(g, m, fmt.Errorf("group: %q: member %s did not rejoin in time: %w", g.name, m.id, kerr.UnknownMemberID))
		}
	}
	if len(g.members) == 0 {
		g.generation++
		g.state, g.protocol, g.leader = stateEmpty, "", ""
		g.emptySince = now
		c.log.Info("group: empty", "group", g.name, "generation", g.generation)
		return
	}
	if !g.electJoinedLeader() {
		// Only static members that have not rejoined are left: wait another
		// round for them; their sessions expire meanwhile if they are gone.
		g.rebalanceTok = c.nextTokLocked()
		c.armLocked(timerEvent{at: now.Add(g.maxRebalanceTimeout()), kind: timerRebalance, g: g, tok: g.rebalanceTok})
		return
	}
	g.generation++
	g.protocol = g.selectProtocol()
	g.state = stateCompletingRebalance
	for _, m := range g.members {
		if m.joinCh != nil {
			m.joinCh <- joinResult{resp: g.joinResponse(m)}
			m.joinCh = nil
		}
		m.joined = false
		c.touchLocked(g, m, now)
	}
	g.syncTok = c.nextTokLocked()
	c.armLocked(timerEvent{at: now.Add(g.maxRebalanceTimeout()), kind: timerSync, g: g, tok: g.syncTok})
	c.log.Info("group: generation formed", "group", g.name, "generation", g.generation,
		"protocol", g.protocol, "leader", g.leader, "members", len(g.members))
}

// electJoinedLeader keeps the leader if it joined this round, else picks
// the first member that did; false when none did.
func (g *group) electJoinedLeader() bool {
	if m := g.members[g.leader]; m != nil && m.joined {
		return true
	}
	for _, m := range g.sortedMembers() {
		if m.joined {
			g.leader = m.id
			return true
		}
	}
	return false
}

// dropMemberLocked forgets m, answering its blocked calls with err, without
// reacting to the change.
func (c *Coordinator) dropMemberLocked(g *group, m *member, err error) {
	m.failJoin(err)
	m.failSync(err)
	m.removed = true
	delete(g.members, m.id)
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
	}
}

// removeMemberLocked removes m (leave or expiry) and rebalances the rest.
func (c *Coordinator) removeMemberLocked(g *group, m *member, reason string) {
	c.dropMemberLocked(g, m, fmt.Errorf("group: %q: member %s: %s: %w", g.name, m.id, reason, kerr.UnknownMemberID))
	switch g.state {
	case stateStable, stateCompletingRebalance:
		c.prepareRebalanceLocked(g, "member "+m.id+": "+reason)
	case statePreparingRebalance:
		c.tryCompleteJoinLocked(g)
	}
}

// touchLocked pushes m's session deadline to now+session, re-arming its
// timer when the deadline moved earlier than the armed one.
func (c *Coordinator) touchLocked(g *group, m *member, now time.Time) {
	m.deadline = now.Add(m.session)
	if m.timerTok == 0 || m.deadline.Before(m.timerAt) {
		c.armSessionLocked(g, m, m.deadline)
	}
}

func (c *Coordinator) armSessionLocked(g *group, m *member, at time.Time) {
	m.timerTok = c.nextTokLocked()
	m.timerAt = at
	c.armLocked(timerEvent{at: at, kind: timerSession, g: g, m: m, tok: m.timerTok})
}

// sessionTimerLocked handles m's session timer. A member that joined the
// round or waits in Sync is alive; otherwise it expires once its deadline
// passed without a heartbeat.
func (c *Coordinator) sessionTimerLocked(g *group, m *member, now time.Time) {
	switch {
	case (g.state == statePreparingRebalance && m.joined) || m.syncCh != nil:
		c.armSessionLocked(g, m, now.Add(m.session))
	case now.Before(m.deadline):
		c.armSessionLocked(g, m, m.deadline)
	default:
		c.log.Info("group: member session expired", "group", g.name, "member", m.id, "session", m.session)
		c.removeMemberLocked(g, m, "session timeout expired")
	}
}

// rebalanceTimerLocked closes a round whose time is up, or extends the
// initial delay while new members keep arriving.
func (c *Coordinator) rebalanceTimerLocked(g *group, now time.Time) {
	if g.initialDelay && g.newMemberAdded && now.Before(g.delayLimit) {
		g.newMemberAdded = false
		g.rebalanceTok = c.nextTokLocked()
		at := now.Add(c.cfg.InitialRebalanceDelay)
		if at.After(g.delayLimit) {
			at = g.delayLimit
		}
		c.armLocked(timerEvent{at: at, kind: timerRebalance, g: g, tok: g.rebalanceTok})
		return
	}
	c.completeJoinLocked(g)
}

// syncTimerLocked: the leader did not sync within the rebalance timeout.
func (c *Coordinator) syncTimerLocked(g *group) {
	g.syncTok = 0
	c.prepareRebalanceLocked(g, "leader "+g.leader+" did not sync in time")
}

// syncLocked runs a SyncGroup. It returns an immediate answer, or a channel
// that gets the assignment once the leader syncs.
func (c *Coordinator) syncLocked(req *SyncRequest) (syncResult, chan syncResult, *member) {
	fail := func(what string, err error) (syncResult, chan syncResult, *member) {
		return syncResult{err: fmt.Errorf("group: sync %q: %s: %w", req.Group, what, err)}, nil, nil
	}
	g := c.groups[req.Group]
	if g == nil {
		return fail("member "+req.MemberID, kerr.UnknownMemberID)
	}
	if req.InstanceID != "" {
		if id, ok := g.static[req.InstanceID]; ok && id != req.MemberID {
			return fail("instance "+req.InstanceID+" member "+req.MemberID, kerr.FencedInstanceID)
		}
	}
	m := g.members[req.MemberID]
	switch {
	case m == nil:
		return fail("member "+req.MemberID, kerr.UnknownMemberID)
	case req.Generation != g.generation:
		return fail(fmt.Sprintf("generation %d, current %d", req.Generation, g.generation), kerr.IllegalGeneration)
	case req.ProtocolType != "" && req.ProtocolType != g.protocolType:
		return fail(fmt.Sprintf("protocol type %q, group has %q", req.ProtocolType, g.protocolType), kerr.InconsistentGroupProtocol)
	case req.Protocol != "" && req.Protocol != g.protocol:
		return fail(fmt.Sprintf("protocol %q, group chose %q", req.Protocol, g.protocol), kerr.InconsistentGroupProtocol)
	}
	now := c.now()
	switch g.state {
	case statePreparingRebalance:
		return fail("generation "+fmt.Sprint(g.generation), kerr.RebalanceInProgress)
	case stateStable:
		c.touchLocked(g, m, now)
		return syncResult{assignment: m.assignment}, nil, m
	case stateCompletingRebalance:
	default:
		return fail("member "+req.MemberID, kerr.UnknownMemberID)
	}
	c.touchLocked(g, m, now)
	m.failSync(fmt.Errorf("group: sync %q: member %s synced again: %w", g.name, m.id, kerr.RebalanceInProgress))
	m.syncCh = make(chan syncResult, 1)
	ch := m.syncCh
	if m.id == g.leader {
		for id, mm := range g.members {
			mm.assignment = append([]byte{}, req.Assignments[id]...)
		}
		g.state = stateStable
		g.syncTok = 0
		for _, mm := range g.members {
			if mm.syncCh != nil {
				mm.syncCh <- syncResult{assignment: mm.assignment}
				mm.syncCh = nil
			}
			c.touchLocked(g, mm, now)
		}
		c.log.Info("group: stable", "group", g.name, "generation", g.generation)
	}
	return syncResult{}, ch, m
}

// heartbeatLocked runs a Heartbeat.
func (c *Coordinator) heartbeatLocked(name, memberID, instanceID string, generation int32) error {
	fail := func(what string, err error) error {
		return fmt.Errorf("group: heartbeat %q: %s: %w", name, what, err)
	}
	g := c.groups[name]
	if g == nil {
		return fail("member "+memberID, kerr.UnknownMemberID)
	}
	if instanceID != "" {
		if id, ok := g.static[instanceID]; ok && id != memberID {
			return fail("instance "+instanceID+" member "+memberID, kerr.FencedInstanceID)
		}
	}
	m := g.members[memberID]
	if m == nil {
		return fail("member "+memberID, kerr.UnknownMemberID)
	}
	if generation != g.generation {
		return fail(fmt.Sprintf("generation %d, current %d", generation, g.generation), kerr.IllegalGeneration)
	}
	c.touchLocked(g, m, c.now())
	if g.state == statePreparingRebalance {
		return fail("generation "+fmt.Sprint(g.generation), kerr.RebalanceInProgress)
	}
	return nil
}

// leaveLocked removes one member (by id, or by instance id when id is
// empty), or forgets a pending member id.
func (c *Coordinator) leaveLocked(g *group, memberID, instanceID string) error {
	fail := func(err error) error {
		return fmt.Errorf("group: leave %q: member %q instance %q: %w", g.name, memberID, instanceID, err)
	}
	if instanceID != "" {
		id, ok := g.static[instanceID]
		switch {
		case !ok:
			return fail(kerr.UnknownMemberID)
		case memberID != "" && id != memberID:
			return fail(kerr.FencedInstanceID)
		}
		memberID = id
	}
	if _, ok := g.pending[memberID]; ok {
		delete(g.pending, memberID)
		c.tryCompleteJoinLocked(g)
		return nil
	}
	m := g.members[memberID]
	if m == nil {
		return fail(kerr.UnknownMemberID)
	}
	c.log.Info("group: member left", "group", g.name, "member", m.id)
	c.removeMemberLocked(g, m, "left the group")
	return nil
}
