package group

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestStateMachine drives the group state machine through the classic
// protocol's scenarios, each on a fresh coordinator.
func TestStateMachine(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*Config)
		run  func(t *testing.T, c *Coordinator)
	}{
		{"single member join sync heartbeat", nil, testSingleMember},
		{"three members join concurrently", nil, testThreeConcurrent},
		{"three members one round with initial delay", func(c *Config) { c.InitialRebalanceDelay = 300 * time.Millisecond }, testThreeInitialDelay},
		{"leave triggers rebalance", nil, testLeave},
		{"session expiry expels member", nil, testSessionExpiry},
		{"member id required", nil, testMemberIDRequired},
		{"pending member id expires", nil, testPendingExpires},
		{"illegal generation", nil, testIllegalGeneration},
		{"inconsistent protocol", nil, testInconsistentProtocol},
		{"request validation", nil, testValidation},
		{"protocol selection by vote", nil, testProtocolVote},
		{"static member rejoin", nil, testStaticRejoin},
		{"static leader rejoin", nil, testStaticLeaderRejoin},
		{"static member leaves by instance id", nil, testStaticLeave},
		{"leader never syncs", nil, testLeaderSyncTimeout},
		{"rebalance timeout drops laggard", nil, testRebalanceTimeoutDrops},
		{"cancelled join keeps member", nil, testJoinCancel},
		{"cancelled sync", nil, testSyncCancel},
		{"retried join while completing", nil, testJoinRetryCompleting},
		{"close wakes waiters", nil, testCloseWakes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			tt.run(t, openT(t, cfg))
		})
	}
}

func testSingleMember(t *testing.T, c *Coordinator) {
	ctx := ctxT(t)
	j := join(t, c, joinReq("g", "", "meta-a"))
	if j.Generation != 1 || j.LeaderID != j.MemberID || j.MemberID == "" || j.Protocol != "range" || j.ProtocolType != "consumer" {
		t.Fatalf("join response %+v", j)
	}
	if len(j.Members) != 1 || j.Members[0].MemberID != j.MemberID || string(j.Members[0].Metadata) != "meta-a" {
		t.Fatalf("leader members %+v", j.Members)
	}
	if d := describe(t, c, "g"); d.State != StateCompletingRebalance {
		t.Fatalf("state %s", d.State)
	}
	// Heartbeats while completing are fine.
	if err := c.Heartbeat("g", j.MemberID, "", j.Generation); err != nil {
		t.Fatal(err)
	}
	a, err := c.Sync(ctx, SyncRequest{Group: "g", MemberID: j.MemberID, Generation: j.Generation,
		ProtocolType: "consumer", Protocol: "range", Assignments: map[string][]byte{j.MemberID: []byte("all")}})
	if err != nil || string(a) != "all" {
		t.Fatalf("sync = %q, %v", a, err)
	}
	if err := c.Heartbeat("g", j.MemberID, "", j.Generation); err != nil {
		t.Fatal(err)
	}
	// A repeated sync in Stable returns the same assignment.
	if a, err := c.Sync(ctx, SyncRequest{Group: "g", MemberID: j.MemberID, Generation: j.Generation}); err != nil || string(a) != "all" {
		t.Fatalf("second sync = %q, %v", a, err)
	}
	// Rejoining with the same metadata as a follower would be a no-op, but
	// the leader's rejoin asks for a rebalance: generation 2.
	j2 := join(t, c, joinReq("g", j.MemberID, "meta-a"))
	if j2.Generation != 2 || j2.MemberID != j.MemberID {
		t.Fatalf("rejoin %+v", j2)
	}
	d := describe(t, c, "g")
	if d.State != StateCompletingRebalance || d.Generation != 2 || len(d.Members) != 1 {
		t.Fatalf("describe %+v", d)
	}
	if gs := c.ListGroups(); len(gs) != 1 || gs[0] != (GroupSummary{Group: "g", ProtocolType: "consumer", State: StateCompletingRebalance}) {
		t.Fatalf("list %+v", gs)
	}
}

// member is a test client that follows the protocol: join, sync (assigning
// when leader), heartbeat, rejoin when told to.
type testClient struct {
	c    *Coordinator
	name string

	mu         sync.Mutex
	id         string
	generation int32
	assignment []byte
	leaderSaw  map[int32]int // generation -> members the leader got
}

func (tc *testClient) run(ctx context.Context) error {
	for ctx.Err() == nil {
		tc.mu.Lock()
		id := tc.id
		tc.mu.Unlock()
		j, err := tc.c.Join(ctx, joinReq("g3", id, "meta-"+tc.name))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, kerr.UnknownMemberID) {
				tc.mu.Lock()
				tc.id = ""
				tc.mu.Unlock()
				continue
			}
			return err
		}
		tc.mu.Lock()
		tc.id = j.MemberID
		if j.LeaderID == j.MemberID {
			if tc.leaderSaw == nil {
				tc.leaderSaw = map[int32]int{}
			}
			tc.leaderSaw[j.Generation] = len(j.Members)
		}
		tc.mu.Unlock()
		var plan map[string][]byte
		if j.LeaderID == j.MemberID {
			plan = assignAll(j.Members)
		}
		a, err := tc.c.Sync(ctx, SyncRequest{Group: "g3", MemberID: j.MemberID, Generation: j.Generation, Assignments: plan})
		if err != nil {
			if errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.IllegalGeneration) {
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		tc.mu.Lock()
		tc.generation, tc.assignment = j.Generation, a
		tc.mu.Unlock()
		for ctx.Err() == nil {
			if err := tc.c.Heartbeat("g3", j.MemberID, "", j.Generation); err != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return nil
}

func testThreeConcurrent(t *testing.T, c *Coordinator) {
	ctx, cancel := context.WithCancel(ctxT(t))
	clients := []*testClient{{c: c, name: "a"}, {c: c, name: "b"}, {c: c, name: "c"}}
	var wg sync.WaitGroup
	errs := make(chan error, len(clients))
	for _, tc := range clients {
		wg.Go(func() {
			if err := tc.run(ctx); err != nil {
				errs <- err
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}()
	checkFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		d, err := c.DescribeGroup("g3")
		if err != nil {
			return err
		}
		if d.State != StateStable || len(d.Members) != 3 {
			return fmt.Errorf("state %s with %d members", d.State, len(d.Members))
		}
		leaders := 0
		for _, tc := range clients {
			tc.mu.Lock()
			gen, id, a, saw := tc.generation, tc.id, string(tc.assignment), tc.leaderSaw[d.Generation]
			tc.mu.Unlock()
			if gen != d.Generation {
				return fmt.Errorf("client %s at generation %d, group at %d", tc.name, gen, d.Generation)
			}
			if a != "a:"+id {
				return fmt.Errorf("client %s got assignment %q", tc.name, a)
			}
			if saw > 0 {
				leaders++
				if saw != 3 {
					return fmt.Errorf("leader got %d members", saw)
				}
			}
		}
		if leaders != 1 {
			return fmt.Errorf("%d leaders", leaders)
		}
		for _, m := range d.Members {
			if !bytes.HasPrefix(m.Metadata, []byte("meta-")) || string(m.Assignment) != "a:"+m.MemberID {
				return fmt.Errorf("described member %+v", m)
			}
		}
		return nil
	})
}

func testThreeInitialDelay(t *testing.T, c *Coordinator) {
	ctx := ctxT(t)
	var chs []<-chan joinOut
	for _, name := range []string{"a", "b", "c"} {
		chs = append(chs, joinAsync(ctx, c, joinReq("g", "", "meta-"+name)))
	}
	var resps []JoinResponse
	for _, ch := range chs {
		resps = append(resps, recvJoin(t, ch))
	}
	var leader JoinResponse
	for _, r := range resps {
		if r.Generation != 1 || r.LeaderID != resps[0].LeaderID {
			t.Fatalf("responses %+v", resps)
		}
		if r.MemberID == r.LeaderID {
			leader = r
		} else if r.Members != nil {
			t.Fatalf("follower got members: %+v", r)
		}
	}
	if len(leader.Members) != 3 {
		t.Fatalf("leader got %d members", len(leader.Members))
	}
	var metas []string
	for _, m := range leader.Members {
		metas = append(metas, string(m.Metadata))
	}
	slices.Sort(metas)
	if !slices.Equal(metas, []string{"meta-a", "meta-b", "meta-c"}) {
		t.Fatalf("metadata %q", metas)
	}
	// Followers sync first and wait for the leader.
	var syncs []<-chan syncOut
	for _, r := range resps {
		if r.MemberID != r.LeaderID {
			syncs = append(syncs, syncAsync(ctx, c, SyncRequest{Group: "g", MemberID: r.MemberID, Generation: 1}))
		}
	}
	checkFor(t, 5*time.Second, time.Millisecond, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		n := 0
		for _, m := range c.groups["g"].members {
			if m.syncCh != nil {
				n++
			}
		}
		if n != 2 {
			return fmt.Errorf("%d followers waiting", n)
		}
		return nil
	})
	a, err := c.Sync(ctx, SyncRequest{Group: "g", MemberID: leader.MemberID, Generation: 1, Assignments: assignAll(leader.Members)})
	if err != nil || string(a) != "a:"+leader.MemberID {
		t.Fatalf("leader sync %q %v", a, err)
	}
	got := map[string]bool{}
	for _, ch := range syncs {
		a, err := recvSync(t, ch)
		if err != nil {
			t.Fatal(err)
		}
		got[string(a)] = true
	}
	for _, r := range resps {
		if r.MemberID != r.LeaderID && !got["a:"+r.MemberID] {
			t.Fatalf("follower %s did not get its assignment: %v", r.MemberID, got)
		}
	}
}

// stableTwo forms a Stable group "g" of two members and returns their join
// answers, leader first.
func stableTwo(t *testing.T, c *Coordinator, reqA, reqB JoinRequest) (JoinResponse, JoinResponse) {
	t.Helper()
	ctx := ctxT(t)
	a := join(t, c, reqA)
	chB := joinAsync(ctx, c, reqB)
	checkFor(t, 5*time.Second, time.Millisecond, wantState(c, "g", StatePreparingRebalance))
	// A's sync for generation 1 is voided by the rebalance; its heartbeat
	// says to rejoin.
	wantKerr(t, c.Heartbeat("g", a.MemberID, reqA.InstanceID, a.Generation), kerr.RebalanceInProgress)
	_, err := c.Sync(ctx, SyncRequest{Group: "g", MemberID: a.MemberID, Generation: a.Generation})
	wantKerr(t, err, kerr.RebalanceInProgress)
	reqA.MemberID = a.MemberID
	a2 := join(t, c, reqA)
	b := recvJoin(t, chB)
	if a2.Generation != a.Generation+1 || b.Generation != a2.Generation {
		t.Fatalf("generations %d %d %d", a.Generation, a2.Generation, b.Generation)
	}
	if a2.LeaderID != a.MemberID || b.LeaderID != a.MemberID || len(a2.Members) != 2 || b.Members != nil {
		t.Fatalf("leader answers %+v / %+v", a2, b)
	}
	chSB := syncAsync(ctx, c, SyncRequest{Group: "g", MemberID: b.MemberID, Generation: b.Generation})
	if _, err := c.Sync(ctx, SyncRequest{Group: "g", MemberID: a2.MemberID, Generation: a2.Generation, Assignments: assignAll(a2.Members)}); err != nil {
		t.Fatal(err)
	}
	if asg, err := recvSync(t, chSB); err != nil || string(asg) != "a:"+b.MemberID {
		t.Fatalf("follower sync %q %v", asg, err)
	}
	return a2, b
}

func testLeave(t *testing.T, c *Coordinator) {
	a, b := stableTwo(t, c, joinReq("g", "", "a"), joinReq("g", "", "b"))
	if err := c.Leave("g", b.MemberID); err != nil {
		t.Fatal(err)
	}
	wantKerr(t, c.Leave("g", b.MemberID), kerr.UnknownMemberID)
	wantKerr(t, c.Heartbeat("g", a.MemberID, "", a.Generation), kerr.RebalanceInProgress)
	wantKerr(t, c.Heartbeat("g", b.MemberID, "", b.Generation), kerr.UnknownMemberID)
	a3 := join(t, c, joinReq("g", a.MemberID, "a"))
	if a3.Generation != a.Generation+1 || len(a3.Members) != 1 {
		t.Fatalf("after leave %+v", a3)
	}
	if err := c.Leave("g", a.MemberID); err != nil {
		t.Fatal(err)
	}
	d := describe(t, c, "g")
	if d.State != StateEmpty || d.Generation != a3.Generation+1 || len(d.Members) != 0 {
		t.Fatalf("after all left %+v", d)
	}
	wantKerr(t, c.Leave("nope", "x"), kerr.UnknownMemberID)
}

func testSessionExpiry(t *testing.T, c *Coordinator) {
	reqA, reqB := joinReq("g", "", "a"), joinReq("g", "", "b")
	reqB.SessionTimeout = 150 * time.Millisecond
	a, b := stableTwo(t, c, reqA, reqB)
	start := time.Now()
	// A heartbeats; B goes silent.
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		err := c.Heartbeat("g", a.MemberID, "", a.Generation)
		if errors.Is(err, kerr.RebalanceInProgress) {
			return nil
		}
		return fmt.Errorf("heartbeat: %v", err)
	})
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("expelled after %v, session is 150ms", el)
	}
	wantKerr(t, c.Heartbeat("g", b.MemberID, "", b.Generation), kerr.UnknownMemberID)
	a2 := join(t, c, joinReq("g", a.MemberID, "a"))
	if a2.Generation != a.Generation+1 || !slices.Equal(memberIDs(a2.Members), []string{a.MemberID}) {
		t.Fatalf("after expiry %+v", a2)
	}
}

func testMemberIDRequired(t *testing.T, c *Coordinator) {
	req := joinReq("g", "", "a")
	req.RequireKnownMemberID = true
	resp, err := c.Join(ctxT(t), req)
	wantKerr(t, err, kerr.MemberIDRequired)
	if resp.MemberID == "" {
		t.Fatal("no member id with MemberIDRequired")
	}
	if d := describe(t, c, "g"); d.State != StateEmpty || len(d.Members) != 0 {
		t.Fatalf("pending member shows: %+v", d)
	}
	req.MemberID = resp.MemberID
	j := join(t, c, req)
	if j.MemberID != resp.MemberID || j.Generation != 1 || j.LeaderID != j.MemberID {
		t.Fatalf("join with given id %+v", j)
	}
	// An id the coordinator never gave out is unknown.
	req.MemberID = "made-up"
	_, err = c.Join(ctxT(t), req)
	wantKerr(t, err, kerr.UnknownMemberID)
	_, err = c.Join(ctxT(t), joinReq("other", "made-up", "a"))
	wantKerr(t, err, kerr.UnknownMemberID)
}

func testPendingExpires(t *testing.T, c *Coordinator) {
	req := joinReq("g", "", "p")
	req.RequireKnownMemberID = true
	req.SessionTimeout = 150 * time.Millisecond
	_, err := c.Join(ctxT(t), req)
	wantKerr(t, err, kerr.MemberIDRequired)
	// A's round waits for the pending member until its session passes.
	start := time.Now()
	a := join(t, c, joinReq("g", "", "a"))
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("round closed after %v while a member id was pending", el)
	}
	if a.Generation != 1 || len(a.Members) != 1 {
		t.Fatalf("join %+v", a)
	}
}

func testIllegalGeneration(t *testing.T, c *Coordinator) {
	ctx := ctxT(t)
	j := join(t, c, joinReq("g", "", "a"))
	_, err := c.Sync(ctx, SyncRequest{Group: "g", MemberID: j.MemberID, Generation: j.Generation + 1})
	wantKerr(t, err, kerr.IllegalGeneration)
	if _, err := c.Sync(ctx, SyncRequest{Group: "g", MemberID: j.MemberID, Generation: j.Generation}); err != nil {
		t.Fatal(err)
	}
	wantKerr(t, c.Heartbeat("g", j.MemberID, "", j.Generation-1), kerr.IllegalGeneration)
	wantKerr(t, c.Heartbeat("g", "stranger", "", j.Generation), kerr.UnknownMemberID)
	wantKerr(t, c.Heartbeat("nogroup", j.MemberID, "", j.Generation), kerr.UnknownMemberID)
	_, err = c.Sync(ctx, SyncRequest{Group: "g", MemberID: "stranger", Generation: j.Generation})
	wantKerr(t, err, kerr.UnknownMemberID)
	_, err = c.Sync(ctx, SyncRequest{Group: "g", MemberID: j.MemberID, Generation: j.Generation, Protocol: "roundrobin"})
	wantKerr(t, err, kerr.InconsistentGroupProtocol)
	_, err = c.Sync(ctx, SyncRequest{Group: "g", MemberID: j.MemberID, Generation: j.Generation, ProtocolType: "connect"})
	wantKerr(t, err, kerr.InconsistentGroupProtocol)
}

func testInconsistentProtocol(t *testing.T, c *Coordinator) {
	ctx := ctxT(t)
	first := joinReq("g", "", "a")
	first.ProtocolType = ""
	_, err := c.Join(ctx, first)
	wantKerr(t, err, kerr.InconsistentGroupProtocol)
	first = joinReq("g", "", "a")
	first.Protocols = nil
	_, err = c.Join(ctx, first)
	wantKerr(t, err, kerr.InconsistentGroupProtocol)

	a := join(t, c, joinReq("g", "", "a", "range"))
	other := joinReq("g", "", "b")
	other.ProtocolType = "connect"
	_, err = c.Join(ctx, other)
	wantKerr(t, err, kerr.InconsistentGroupProtocol)
	_, err = c.Join(ctx, joinReq("g", "", "b", "roundrobin"))
	wantKerr(t, err, kerr.InconsistentGroupProtocol)
	// Sharing one protocol is enough.
	chB := joinAsync(ctx, c, joinReq("g", "", "b", "roundrobin", "range"))
	checkFor(t, 5*time.Second, time.Millisecond, wantState(c, "g", StatePreparingRebalance))
	a2 := join(t, c, joinReq("g", a.MemberID, "a", "range"))
	b := recvJoin(t, chB)
	if a2.Protocol != "range" || b.Protocol != "range" {
		t.Fatalf("protocols %q %q", a2.Protocol, b.Protocol)
	}
}

func testValidation(t *testing.T, c *Coordinator) {
	ctx := ctxT(t)
	_, err := c.Join(ctx, joinReq("", "", "a"))
	wantKerr(t, err, kerr.InvalidGroupID)
	req := joinReq("g", "", "a")
	req.SessionTimeout = 0
	_, err = c.Join(ctx, req)
	wantKerr(t, err, kerr.InvalidSessionTimeout)
	req.SessionTimeout = time.Hour
	_, err = c.Join(ctx, req)
	wantKerr(t, err, kerr.InvalidSessionTimeout)
	_, err = c.Sync(ctx, SyncRequest{})
	wantKerr(t, err, kerr.InvalidGroupID)
	wantKerr(t, c.Heartbeat("", "m", "", 1), kerr.InvalidGroupID)
	wantKerr(t, c.Leave("", "m"), kerr.InvalidGroupID)
	wantKerr(t, c.CommitOffsets("", "", -1, nil), kerr.InvalidGroupID)
	_, err = c.FetchOffsets("", nil)
	wantKerr(t, err, kerr.InvalidGroupID)
	_, err = c.DescribeGroup("")
	wantKerr(t, err, kerr.InvalidGroupID)
	if d := describe(t, c, "never"); d.State != StateDead {
		t.Fatalf("unknown group described as %+v", d)
	}
	if Code(err) != kerr.InvalidGroupID.Code || Code(nil) != 0 || Code(errors.New("x")) != kerr.UnknownServerError.Code {
		t.Fatal("Code")
	}
}

func testProtocolVote(t *testing.T, c *Coordinator) {
	ctx := ctxT(t)
	// a prefers range, b and c prefer roundrobin: roundrobin wins 2:1.
	a := join(t, c, joinReq("g", "", "a", "range", "roundrobin"))
	chB := joinAsync(ctx, c, joinReq("g", "", "b", "roundrobin", "range"))
	chC := joinAsync(ctx, c, joinReq("g", "", "c", "roundrobin", "range", "sticky"))
	checkFor(t, 5*time.Second, time.Millisecond, func() error {
		d := describe(t, c, "g")
		if len(d.Members) != 3 {
			return fmt.Errorf("%d members", len(d.Members))
		}
		return nil
	})
	a2 := join(t, c, joinReq("g", a.MemberID, "a", "range", "roundrobin"))
	recvJoin(t, chB)
	recvJoin(t, chC)
	if a2.Protocol != "roundrobin" {
		t.Fatalf("protocol %q", a2.Protocol)
	}
}

func testStaticRejoin(t *testing.T, c *Coordinator) {
	ctx := ctxT(t)
	reqD := joinReq("g", "", "d")
	reqS := joinReq("g", "", "s")
	reqS.InstanceID = "inst-1"
	d, s := stableTwo(t, c, reqD, reqS)

	// The static member restarts: it joins with its instance id and no
	// member id, gets a new id at once, and the group does not rebalance.
	s2 := join(t, c, reqS)
	if s2.MemberID == s.MemberID || s2.Generation != s.Generation || s2.LeaderID != d.MemberID || s2.Members != nil {
		t.Fatalf("static rejoin %+v (before %+v)", s2, s)
	}
	if err := c.Heartbeat("g", d.MemberID, "", d.Generation); err != nil {
		t.Fatalf("dynamic member after static rejoin: %v", err)
	}
	a, err := c.Sync(ctx, SyncRequest{Group: "g", MemberID: s2.MemberID, InstanceID: "inst-1", Generation: s2.Generation})
	if err != nil || string(a) != "a:"+s.MemberID {
		t.Fatalf("static sync %q %v", a, err)
	}
	// The old incarnation is fenced.
	wantKerr(t, c.Heartbeat("g", s.MemberID, "inst-1", s.Generation), kerr.FencedInstanceID)
	wantKerr(t, c.Heartbeat("g", s.MemberID, "", s.Generation), kerr.UnknownMemberID)
	offs := map[TopicPartition]OffsetCommit{{Topic: "t"}: {Offset: 1}}
	wantKerr(t, c.CommitOffsetsInstance("g", s.MemberID, "inst-1", s.Generation, offs), kerr.FencedInstanceID)
	if err := c.CommitOffsetsInstance("g", s2.MemberID, "inst-1", s2.Generation, offs); err != nil {
		t.Fatal(err)
	}
	reqS.MemberID = s.MemberID
	_, err = c.Join(ctx, reqS)
	wantKerr(t, err, kerr.FencedInstanceID)
	if err := c.Heartbeat("g", s2.MemberID, "inst-1", s2.Generation); err != nil {
		t.Fatal(err)
	}
	if dd := describe(t, c, "g"); len(dd.Members) != 2 || dd.Generation != s.Generation || dd.State != StateStable {
		t.Fatalf("describe %+v", dd)
	}

	// Rejoining with other metadata does rebalance.
	reqS.MemberID = ""
	reqS.Protocols = []Protocol{{Name: "range", Metadata: []byte("s-new")}}
	chS := joinAsync(ctx, c, reqS)
	checkFor(t, 5*time.Second, time.Millisecond, wantState(c, "g", StatePreparingRebalance))
	d2 := join(t, c, joinReq("g", d.MemberID, "d"))
	s3 := recvJoin(t, chS)
	if d2.Generation != s.Generation+1 || s3.Generation != d2.Generation || len(d2.Members) != 2 {
		t.Fatalf("after static metadata change %+v / %+v", d2, s3)
	}
}

func testStaticLeaderRejoin(t *testing.T, c *Coordinator) {
	ctx := ctxT(t)
	reqS := joinReq("g", "", "s")
	reqS.InstanceID = "leader-inst"
	s, d := stableTwo(t, c, reqS, joinReq("g", "", "d"))
	if s.LeaderID != s.MemberID {
		t.Fatal("static member should lead")
	}
	reqS.MemberID = ""
	s2 := join(t, c, reqS)
	// Named the old leader id, so it does not assign again.
	if s2.LeaderID != s.MemberID || s2.MemberID == s.MemberID || s2.Members != nil || s2.Generation != s.Generation {
		t.Fatalf("static leader rejoin %+v", s2)
	}
	if a, err := c.Sync(ctx, SyncRequest{Group: "g", MemberID: s2.MemberID, Generation: s2.Generation}); err != nil || string(a) != "a:"+s.MemberID {
		t.Fatalf("sync %q %v", a, err)
	}
	// The next rebalance is led by its new id.
	if err := c.Leave("g", d.MemberID); err != nil {
		t.Fatal(err)
	}
	reqS.MemberID = s2.MemberID
	s3 := join(t, c, reqS)
	if s3.LeaderID != s2.MemberID || len(s3.Members) != 1 || s3.Members[0].InstanceID != "leader-inst" {
		t.Fatalf("next round %+v", s3)
	}
}

func testStaticLeave(t *testing.T, c *Coordinator) {
	reqS := joinReq("g", "", "s")
	reqS.InstanceID = "i"
	s, d := stableTwo(t, c, reqS, joinReq("g", "", "d"))
	errs := c.LeaveMembers("g", []LeaveMember{{InstanceID: "i", MemberID: "wrong"}, {InstanceID: "nope"}})
	wantKerr(t, errs[0], kerr.FencedInstanceID)
	wantKerr(t, errs[1], kerr.UnknownMemberID)
	errs = c.LeaveMembers("g", []LeaveMember{{InstanceID: "i"}})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	wantKerr(t, c.Heartbeat("g", s.MemberID, "i", s.Generation), kerr.UnknownMemberID)
	wantKerr(t, c.Heartbeat("g", d.MemberID, "", d.Generation), kerr.RebalanceInProgress)
}

func testLeaderSyncTimeout(t *testing.T, c *Coordinator) {
	ctx := ctxT(t)
	reqA, reqB := joinReq("g", "", "a"), joinReq("g", "", "b")
	reqA.RebalanceTimeout, reqB.RebalanceTimeout = 200*time.Millisecond, 200*time.Millisecond
	a := join(t, c, reqA)
	chB := joinAsync(ctx, c, reqB)
	checkFor(t, 5*time.Second, time.Millisecond, wantState(c, "g", StatePreparingRebalance))
	reqA.MemberID = a.MemberID
	a2 := join(t, c, reqA)
	b := recvJoin(t, chB)
	// The follower syncs; the leader never does.
	start := time.Now()
	_, err := recvSync(t, syncAsync(ctx, c, SyncRequest{Group: "g", MemberID: b.MemberID, Generation: b.Generation}))
	wantKerr(t, err, kerr.RebalanceInProgress)
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Fatalf("gave up after %v, rebalance timeout is 200ms", el)
	}
	if d := describe(t, c, "g"); d.State != StatePreparingRebalance || d.Generation != a2.Generation {
		t.Fatalf("after sync timeout %+v", d)
	}
	// A late leader sync is told to rejoin too.
	_, err = c.Sync(ctx, SyncRequest{Group: "g", MemberID: a2.MemberID, Generation: a2.Generation, Assignments: assignAll(a2.Members)})
	wantKerr(t, err, kerr.RebalanceInProgress)
}

func testRebalanceTimeoutDrops(t *testing.T, c *Coordinator) {
	ctx := ctxT(t)
	reqA, reqB := joinReq("g", "", "a"), joinReq("g", "", "b")
	reqA.RebalanceTimeout, reqB.RebalanceTimeout = 200*time.Millisecond, 200*time.Millisecond
	a, b := stableTwo(t, c, reqA, reqB)
	// A rejoins (leader asks for a rebalance); B keeps heartbeating but never
	// rejoins, so the round closes at the rebalance timeout without it.
	start := time.Now()
	chA := joinAsync(ctx, c, JoinRequest{Group: "g", MemberID: a.MemberID, ProtocolType: "consumer",
		Protocols: reqA.Protocols, SessionTimeout: reqA.SessionTimeout, RebalanceTimeout: reqA.RebalanceTimeout})
	for {
		select {
		case out := <-chA:
			if out.err != nil {
				t.Fatal(out.err)
			}
			if el := time.Since(start); el < 150*time.Millisecond {
				t.Fatalf("round closed after %v", el)
			}
			if out.resp.Generation != a.Generation+1 || len(out.resp.Members) != 1 {
				t.Fatalf("round %+v", out.resp)
			}
			wantKerr(t, c.Heartbeat("g", b.MemberID, "", b.Generation), kerr.UnknownMemberID)
			return
		case <-time.After(10 * time.Millisecond):
			// A member whose join is pending counts as alive; B, not joined,
			// hears that it must rejoin.
			err := c.Heartbeat("g", b.MemberID, "", b.Generation)
			switch {
			case err == nil, errors.Is(err, kerr.RebalanceInProgress):
			case errors.Is(err, kerr.UnknownMemberID) && time.Since(start) >= 150*time.Millisecond:
				// Dropped as the round closed; chA is about to be ready.
			default:
				t.Fatalf("heartbeat during round after %v: %v", time.Since(start), err)
			}
		}
	}
}

func testJoinCancel(t *testing.T, c *Coordinator) {
	a := join(t, c, joinReq("g", "", "a"))
	if _, err := c.Sync(ctxT(t), SyncRequest{Group: "g", MemberID: a.MemberID, Generation: a.Generation}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	chB := joinAsync(ctx, c, joinReq("g", "", "b"))
	checkFor(t, 5*time.Second, time.Millisecond, wantState(c, "g", StatePreparingRebalance))
	cancel()
	out := <-chB
	if !errors.Is(out.err, context.Canceled) {
		t.Fatalf("cancelled join: %+v", out)
	}
	// B stays a member that joined this round: A's rejoin closes it.
	a2 := join(t, c, joinReq("g", a.MemberID, "a"))
	if a2.Generation != a.Generation+1 || len(a2.Members) != 2 {
		t.Fatalf("round after cancelled join %+v", a2)
	}
}

func testSyncCancel(t *testing.T, c *Coordinator) {
	ctx := ctxT(t)
	a := join(t, c, joinReq("g", "", "a"))
	chB := joinAsync(ctx, c, joinReq("g", "", "b"))
	checkFor(t, 5*time.Second, time.Millisecond, wantState(c, "g", StatePreparingRebalance))
	a2 := join(t, c, joinReq("g", a.MemberID, "a"))
	b := recvJoin(t, chB)
	sctx, cancel := context.WithCancel(ctx)
	chS := syncAsync(sctx, c, SyncRequest{Group: "g", MemberID: b.MemberID, Generation: b.Generation})
	cancel()
	if _, err := recvSync(t, chS); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled sync: %v", err)
	}
	if _, err := c.Sync(ctx, SyncRequest{Group: "g", MemberID: a2.MemberID, Generation: a2.Generation, Assignments: assignAll(a2.Members)}); err != nil {
		t.Fatal(err)
	}
	if asg, err := c.Sync(ctx, SyncRequest{Group: "g", MemberID: b.MemberID, Generation: b.Generation}); err != nil || string(asg) != "a:"+b.MemberID {
		t.Fatalf("sync after cancel %q %v", asg, err)
	}
}

func testJoinRetryCompleting(t *testing.T, c *Coordinator) {
	a := join(t, c, joinReq("g", "", "a"))
	// The answer got lost; the same join again gets the same generation.
	again := join(t, c, joinReq("g", a.MemberID, "a"))
	if again.Generation != a.Generation || again.LeaderID != a.MemberID || len(again.Members) != 1 {
		t.Fatalf("retried join %+v", again)
	}
}

func testCloseWakes(t *testing.T, c *Coordinator) {
	ctx := ctxT(t)
	a := join(t, c, joinReq("g", "", "a"))
	chB := joinAsync(ctx, c, joinReq("g", "", "b"))
	checkFor(t, 5*time.Second, time.Millisecond, wantState(c, "g", StatePreparingRebalance))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	out := <-chB
	wantKerr(t, out.err, kerr.CoordinatorNotAvailable)
	if !errors.Is(out.err, ErrClosed) {
		t.Fatalf("not ErrClosed: %v", out.err)
	}
	wantKerr(t, c.Heartbeat("g", a.MemberID, "", a.Generation), kerr.CoordinatorNotAvailable)
	wantKerr(t, c.CommitOffsets("g", "", -1, nil), kerr.CoordinatorNotAvailable)
}
