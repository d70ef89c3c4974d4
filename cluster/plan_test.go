package cluster

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/gossip"
)

func nodes(ids ...int32) []nodeRecord {
	var out []nodeRecord
	for _, id := range ids {
		out = append(out, nodeRecord{ID: id, QUIC: fmt.Sprintf("127.0.0.1:%d", 7000+id)})
	}
	return out
}

func racked(spec map[int32]string) []nodeRecord {
	var out []nodeRecord
	for id, r := range spec {
		out = append(out, nodeRecord{ID: id, Rack: r})
	}
	return out
}

func TestPlace(t *testing.T) {
	for _, tc := range []struct {
		name         string
		live         []nodeRecord
		first, count int32
		rf           int
		start        int32
		want         [][]int32 // replicas per partition
		err          error
	}{
		{"rf1 round robin", nodes(1, 2, 3), 0, 4, 1, 0, [][]int32{{1}, {2}, {3}, {1}}, nil},
		{"rf3 rotates leaders", nodes(3, 1, 2), 0, 3, 3, 0, [][]int32{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}}, nil},
		{"start rotates", nodes(1, 2, 3), 0, 2, 2, 1, [][]int32{{2, 3}, {3, 1}}, nil},
		{"added partitions continue", nodes(1, 2, 3), 3, 2, 1, 0, [][]int32{{1}, {2}}, nil},
		{"rf above live nodes", nodes(1, 2), 0, 1, 3, 0, nil, kerr.InvalidReplicationFactor},
		{"rf 0", nodes(1, 2), 0, 1, 0, 0, nil, kerr.InvalidReplicationFactor},
		{
			// Racks a:{1,2} b:{3,4}: order 1(a) 3(b) 2(a) 4(b); a replica
			// pair never shares a rack.
			"rack aware", racked(map[int32]string{1: "a", 2: "a", 3: "b", 4: "b"}), 0, 4, 2, 0,
			[][]int32{{1, 3}, {3, 2}, {2, 4}, {4, 1}}, nil,
		},
		{
			// Three racks, one of them with two nodes: rf 3 spans all racks.
			"rack aware uneven", racked(map[int32]string{1: "a", 2: "a", 3: "b", 4: "c"}), 0, 4, 3, 0,
			[][]int32{{1, 3, 4}, {3, 4, 2}, {4, 2, 3}, {2, 3, 4}}, nil,
		},
		{
			// More replicas than racks: racks first, then any node.
			"rack aware rf above racks", racked(map[int32]string{1: "a", 2: "a", 3: "b"}), 0, 1, 3, 0,
			[][]int32{{1, 3, 2}}, nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := place(tc.live, tc.first, tc.count, tc.rf, tc.start)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range got {
				if p.Partition != tc.first+int32(i) || !slices.Equal(p.Replicas, tc.want[i]) ||
					p.Leader != tc.want[i][0] || !slices.Equal(p.ISR, tc.want[i]) || p.LeaderEpoch != 0 {
					t.Fatalf("partition %d = %+v, want replicas %v", i, p, tc.want[i])
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d partitions, want %d", len(got), len(tc.want))
			}
		})
	}
}

// TestPlaceRackSpread checks the property on a bigger layout: with as
// many racks as replicas, no partition has two replicas on one rack.
func TestPlaceRackSpread(t *testing.T) {
	spec := map[int32]string{}
	for id := int32(1); id <= 9; id++ {
		spec[id] = string(rune('a' + id%3))
	}
	for start := int32(0); start < 5; start++ {
		parts, err := place(racked(spec), 0, 30, 3, start)
		if err != nil {
			t.Fatal(err)
		}
		lead := map[int32]int{}
		for _, p := range parts {
			racks := map[string]bool{}
			for _, r := range p.Replicas {
				racks[spec[r]] = true
			}
			if len(racks) != 3 {
				t.Fatalf("start %d partition %d replicas %v share a rack", start, p.Partition, p.Replicas)
			}
			lead[p.Leader]++
		}
		for id, n := range lead {
			if n != 30/9 && n != 30/9+1 {
				t.Fatalf("start %d: node %d leads %d of 30 partitions", start, id, n)
			}
		}
	}
}

func partState(parts ...bus.PartitionAssignment) *state {
	s := newState()
	s.Topics["t"] = bus.TopicState{Name: "t", ReplicationFactor: 3, Partitions: parts}
	return s
}

func pa(p int32, replicas []int32, leader, epoch int32, isr []int32) bus.PartitionAssignment {
	return bus.PartitionAssignment{Partition: p, Replicas: replicas, Leader: leader, LeaderEpoch: epoch, ISR: isr}
}

func aliveSet(ids ...int32) map[int32]bool {
	m := map[int32]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func TestPlanPartitions(t *testing.T) {
	r := []int32{1, 2, 3}
	for _, tc := range []struct {
		name  string
		part  bus.PartitionAssignment
		alive map[int32]bool
		want  *command // nil: nothing to do
	}{
		{"all alive", pa(0, r, 1, 4, r), aliveSet(1, 2, 3), nil},
		{"leader dead: next ISR member in replica order", pa(0, r, 1, 4, []int32{3, 1, 2}), aliveSet(2, 3),
			&command{Leader: 2, ISR: []int32{3, 2}, LeaderEpoch: 4}},
		{"leader dead: ISR member, not any replica", pa(0, r, 1, 4, []int32{1, 3}), aliveSet(2, 3),
			&command{Leader: 3, ISR: []int32{3}, LeaderEpoch: 4}},
		{"no ISR member alive: offline, ISR kept", pa(0, r, 1, 4, []int32{1}), aliveSet(2, 3),
			&command{Leader: -1, ISR: []int32{1}, LeaderEpoch: 4}},
		{"offline stays offline", pa(0, r, -1, 5, []int32{1}), aliveSet(2, 3), nil},
		{"offline: ISR member back leads", pa(0, r, -1, 5, []int32{1, 2}), aliveSet(2, 3),
			&command{Leader: 2, ISR: []int32{2}, LeaderEpoch: 5}},
		{"dead follower leaves the ISR", pa(0, r, 1, 4, r), aliveSet(1, 3),
			&command{Leader: 1, ISR: []int32{1, 3}, LeaderEpoch: 4}},
		{"dead non-ISR follower: nothing", pa(0, r, 1, 4, []int32{1, 2}), aliveSet(1, 2), nil},
		{"everyone dead", pa(0, r, 2, 1, r), aliveSet(), &command{Leader: -1, ISR: r, LeaderEpoch: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmds := planPartitions(partState(tc.part), tc.alive)
			if tc.want == nil {
				if len(cmds) != 0 {
					t.Fatalf("commands %+v, want none", cmds)
				}
				return
			}
			if len(cmds) != 1 {
				t.Fatalf("commands %+v, want one", cmds)
			}
			c := cmds[0]
			if c.Op != opUpdatePartition || c.Name != "t" || c.Leader != tc.want.Leader ||
				!slices.Equal(c.ISR, tc.want.ISR) || c.LeaderEpoch != tc.want.LeaderEpoch {
				t.Fatalf("command %+v, want leader %d isr %v at epoch %d", c, tc.want.Leader, tc.want.ISR, tc.want.LeaderEpoch)
			}
			// Applying the plan bumps the epoch exactly when the leader
			// changes, and a second plan on the result is empty.
			s := partState(tc.part)
			if res, _ := s.apply(1, c); res.Err != nil {
				t.Fatal(res.Err)
			}
			p := s.Topics["t"].Partitions[0]
			wantEpoch := tc.part.LeaderEpoch
			if tc.want.Leader != tc.part.Leader {
				wantEpoch++
			}
			if p.LeaderEpoch != wantEpoch || p.Leader != tc.want.Leader {
				t.Fatalf("applied: %+v, want epoch %d", p, wantEpoch)
			}
			if again := planPartitions(s, tc.alive); len(again) != 0 {
				t.Fatalf("not idempotent: %+v", again)
			}
		})
	}
}

// TestFailoverSequence walks a partition through failures and returns:
// the last leader comes back as leader once everybody died.
func TestFailoverSequence(t *testing.T) {
	s := partState(pa(0, []int32{1, 2, 3}, 1, 0, []int32{1, 2, 3}))
	idx := uint64(0)
	step := func(alive map[int32]bool) bus.PartitionAssignment {
		for _, c := range planPartitions(s, alive) {
			idx++
			if res, _ := s.apply(idx, c); res.Err != nil {
				t.Fatal(res.Err)
			}
		}
		return s.Topics["t"].Partitions[0]
	}
	check := func(p bus.PartitionAssignment, leader, epoch int32, isr []int32) {
		t.Helper()
		if p.Leader != leader || p.LeaderEpoch != epoch || !slices.Equal(p.ISR, isr) {
			t.Fatalf("got leader %d epoch %d isr %v, want %d %d %v", p.Leader, p.LeaderEpoch, p.ISR, leader, epoch, isr)
		}
	}
	check(step(aliveSet(2, 3)), 2, 1, []int32{2, 3})    // 1 dies
	check(step(aliveSet(3)), 3, 2, []int32{3})          // 2 dies
	check(step(aliveSet()), -1, 3, []int32{3})          // 3 dies: offline
	check(step(aliveSet(1, 2)), -1, 3, []int32{3})      // 1, 2 return: not in ISR
	check(step(aliveSet(1, 2, 3)), 3, 4, []int32{3})    // 3 returns and leads
	check(step(aliveSet(1, 2, 3)), 3, 4, []int32{3})    // stable
	check(step(aliveSet(1, 2)), -1, 5, []int32{3})      // and again
	check(step(aliveSet(1, 2, 3)), 3, 6, []int32{3})    //
	check(step(aliveSet(1, 3)), 3, 6, []int32{3})       // a non-ISR follower dies: nothing
	check(step(aliveSet(1, 2, 3)), 3, 6, []int32{3})    // the leader re-adds followers itself
	check(step(aliveSet(1, 2, 3, 4)), 3, 6, []int32{3}) // strangers do not matter
}

func members(spec ...any) []gossip.Member {
	// spec: id, state, id, state, ...
	var out []gossip.Member
	for i := 0; i < len(spec); i += 2 {
		id := spec[i].(int)
		out = append(out, gossip.Member{
			Meta:  gossip.Meta{ID: int32(id), QUIC: fmt.Sprintf("127.0.0.1:%d", 7000+id)},
			State: spec[i+1].(gossip.State),
		})
	}
	return out
}

func raftCfg(spec ...any) raft.Configuration {
	var c raft.Configuration
	for i := 0; i < len(spec); i += 2 {
		id := spec[i].(int)
		c.Servers = append(c.Servers, raft.Server{
			ID: serverID(int32(id)), Address: raft.ServerAddress(fmt.Sprintf("127.0.0.1:%d", 7000+id)),
			Suffrage: spec[i+1].(raft.ServerSuffrage),
		})
	}
	return c
}

func TestPlanServers(t *testing.T) {
	A, D, L := gossip.StateAlive, gossip.StateDead, gossip.StateLeft
	V, N := raft.Voter, raft.Nonvoter
	for _, tc := range []struct {
		name    string
		cfg     raft.Configuration
		members []gossip.Member
		cap     int
		want    []string
	}{
		{"steady", raftCfg(1, V, 2, V, 3, V), members(1, A, 2, A, 3, A), 3, nil},
		{"new node below cap is a voter", raftCfg(1, V, 2, V), members(1, A, 2, A, 3, A), 3, []string{"voter 3"}},
		{"beyond cap a nonvoter", raftCfg(1, V, 2, V, 3, V), members(1, A, 2, A, 3, A, 4, A, 5, A), 3,
			[]string{"nonvoter 4", "nonvoter 5"}},
		{"cap 5", raftCfg(1, V, 2, V, 3, V), members(1, A, 2, A, 3, A, 4, A, 5, A, 6, A), 5,
			[]string{"voter 4", "voter 5", "nonvoter 6"}},
		{"dead voters stay", raftCfg(1, V, 2, V, 3, V), members(1, A, 2, D, 3, D, 4, A), 3, []string{"nonvoter 4"}},
		{"left voter removed, nonvoter promoted", raftCfg(1, V, 2, V, 3, V, 4, N), members(1, A, 2, L, 3, A, 4, A), 3,
			[]string{"remove 2", "voter 4"}},
		{"self never removed", raftCfg(1, V, 2, V), members(1, L, 2, A), 3, nil},
		{"left and not a member: nothing", raftCfg(1, V), members(1, A, 2, L), 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, ch := range planServers(tc.cfg, tc.members, 1, tc.cap) {
				got = append(got, fmt.Sprintf("%s %d", ch.Kind, ch.ID))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	// An address change re-adds with the same suffrage.
	ms := members(1, gossip.StateAlive, 2, gossip.StateAlive)
	ms[1].QUIC = "127.0.0.1:9999"
	ch := planServers(raftCfg(1, V, 2, V), ms, 1, 3)
	if len(ch) != 1 || ch[0].Kind != "voter" || ch[0].Addr != "127.0.0.1:9999" {
		t.Fatalf("address change: %+v", ch)
	}
}

func TestPlanBootstrap(t *testing.T) {
	A, D := gossip.StateAlive, gossip.StateDead
	withRaft := members(1, A, 2, A, 3, A)
	withRaft[2].Raft = true
	for _, tc := range []struct {
		name    string
		members []gossip.Member
		self    int32
		expect  int
		cap     int
		want    []string // "id:suffrage"; nil: no bootstrap
	}{
		{"alone, expect 1", members(1, A), 1, 1, 3, []string{"1:Voter"}},
		{"waiting for 3", members(1, A, 2, A), 1, 3, 3, nil},
		{"dead members do not count", members(1, A, 2, A, 3, D), 1, 3, 3, nil},
		{"3 of 3", members(3, A, 1, A, 2, A), 2, 3, 3, []string{"1:Voter", "2:Voter", "3:Voter"}},
		{"lowest 3 of 4; 4 waits", members(1, A, 2, A, 3, A, 4, A), 4, 3, 3, nil},
		{"lowest 3 of 4", members(1, A, 2, A, 3, A, 4, A), 3, 3, 3, []string{"1:Voter", "2:Voter", "3:Voter"}},
		{"a member with raft state: join it instead", withRaft, 1, 3, 3, nil},
		{"expect above cap", members(1, A, 2, A, 3, A, 4, A), 1, 4, 3,
			[]string{"1:Voter", "2:Voter", "3:Voter", "4:Nonvoter"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ok := planBootstrap(tc.members, tc.self, tc.expect, tc.cap)
			if tc.want == nil {
				if ok {
					t.Fatalf("bootstrapped %+v", cfg)
				}
				return
			}
			if !ok {
				t.Fatal("no bootstrap")
			}
			var got []string
			for _, s := range cfg.Servers {
				got = append(got, fmt.Sprintf("%s:%s", s.ID, s.Suffrage))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPlanRequests(t *testing.T) {
	s := newState()
	live := nodes(1, 2, 3)
	var id [16]byte
	c, err := planCreateTopic(s, live, bus.TopicSpec{Name: "t", Partitions: 0, ReplicationFactor: 0}, id, 2, 1, nil)
	if err != nil || len(c.Topic.Partitions) != 2 || c.Topic.ReplicationFactor != 1 {
		t.Fatalf("defaults: %+v %v", c.Topic, err)
	}
	if res, _ := s.apply(1, c); res.Err != nil {
		t.Fatal(res.Err)
	}
	for _, tc := range []struct {
		name string
		err  error
		fn   func() error
	}{
		{"exists", kerr.TopicAlreadyExists, func() error {
			_, err := planCreateTopic(s, live, bus.TopicSpec{Name: "t"}, id, 1, 1, nil)
			return err
		}},
		{"bad name", kerr.InvalidTopicException, func() error {
			_, err := planCreateTopic(s, live, bus.TopicSpec{Name: "a/b"}, id, 1, 1, nil)
			return err
		}},
		{"rf above live", kerr.InvalidReplicationFactor, func() error {
			_, err := planCreateTopic(s, live, bus.TopicSpec{Name: "u", ReplicationFactor: 4}, id, 1, 1, nil)
			return err
		}},
		{"unknown config", kerr.InvalidConfig, func() error {
			_, err := planCreateTopic(s, live, bus.TopicSpec{Name: "u", Configs: map[string]string{"x": "1"}}, id, 1, 1, nil)
			return err
		}},
		{"validator", kerr.InvalidConfig, func() error {
			_, err := planCreateTopic(s, live, bus.TopicSpec{Name: "u"}, id, 1, 1,
				func(map[string]string) error { return kerr.InvalidConfig })
			return err
		}},
		{"add partitions: unknown", kerr.UnknownTopicOrPartition, func() error {
			_, err := planAddPartitions(s, live, "nope", 3)
			return err
		}},
		{"add partitions: not more", kerr.InvalidPartitions, func() error {
			_, err := planAddPartitions(s, live, "t", 2)
			return err
		}},
		{"alter: unknown", kerr.UnknownTopicOrPartition, func() error {
			_, err := planAlterConfigs(s, "nope", nil, false, nil)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.fn(); !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
	c, err = planAddPartitions(s, live, "t", 4)
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := s.apply(2, c); res.Err != nil {
		t.Fatal(res.Err)
	}
	if n := len(s.Topics["t"].Partitions); n != 4 {
		t.Fatalf("%d partitions", n)
	}
}
