package cluster

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/gossip"
)

// The controller's decisions are pure functions of (metadata state, who
// is alive) to commands or configuration changes, so that they can be
// tested without sockets; controller.go applies them.

// placementOrder orders the nodes replicas are placed on: by id, or, when
// any node has a rack, alternating racks (rack a's first node, rack b's
// first node, ..., rack a's second node, ...) as Kafka does, so that
// consecutive nodes sit on different racks.
func placementOrder(nodes []nodeRecord) (order []nodeRecord, racks bool) {
	nodes = slices.Clone(nodes)
	slices.SortFunc(nodes, func(a, b nodeRecord) int { return cmp.Compare(a.ID, b.ID) })
	byRack := map[string][]nodeRecord{}
	for _, n := range nodes {
		byRack[n.Rack] = append(byRack[n.Rack], n)
		racks = racks || n.Rack != ""
	}
	if !racks {
		return nodes, false
	}
	names := slices.Sorted(maps.Keys(byRack))
	for i := 0; len(order) < len(nodes); i++ {
		for _, r := range names {
			if i < len(byRack[r]) {
				order = append(order, byRack[r][i])
			}
		}
	}
	return order, true
}

// place assigns replicas to partitions first..first+count-1 over the live
// nodes, round-robin from a rotating start: partition p's replicas are the
// rf nodes following position (start+p) in placementOrder, skipping, on a
// first pass, nodes of racks the partition already uses. The first replica
// leads; the ISR is every replica; epochs start at 0.
func place(live []nodeRecord, first, count int32, rf int, start int32) ([]bus.PartitionAssignment, error) {
	if rf <= 0 || rf > len(live) {
		return nil, fmt.Errorf("%w: replication factor %d with %d live nodes", kerr.InvalidReplicationFactor, rf, len(live))
	}
	order, racks := placementOrder(live)
	n := len(order)
	out := make([]bus.PartitionAssignment, 0, count)
	for i := range count {
		p := first + i
		pos := int((int64(start) + int64(p)) % int64(n))
		if pos < 0 {
			pos += n
		}
		replicas := make([]int32, 0, rf)
		used := map[string]bool{}
		taken := map[int32]bool{}
		for pass := 0; pass < 2 && len(replicas) < rf; pass++ {
			for k := 0; k < n && len(replicas) < rf; k++ {
				node := order[(pos+k)%n]
				if taken[node.ID] || (pass == 0 && racks && used[node.Rack]) {
					continue
				}
				taken[node.ID] = true
				used[node.Rack] = true
				replicas = append(replicas, node.ID)
			}
		}
		out = append(out, bus.PartitionAssignment{
			Partition: p, Replicas: replicas, Leader: replicas[0], ISR: slices.Clone(replicas),
		})
	}
	return out, nil
}

// planPartitions returns the update_partition commands that repair
// leadership and ISRs given who is alive:
//
//   - a partition whose leader is dead gets the first alive ISR member (in
//     replica order) as leader, and the dead drop out of its ISR; if no ISR
//     member is alive it goes offline (leader -1) with its ISR kept, so
//     that one of the last in-sync replicas leads when it returns (unclean
//     election is off). Every leader change bumps the epoch.
//   - an offline partition is given back a leader as soon as an ISR member
//     is alive.
//   - dead followers leave the ISR of a partition whose leader is alive,
//     without an epoch change (the leader adds them back, by AlterISR, once
//     they have caught up).
func planPartitions(s *state, alive map[int32]bool) []command {
	var out []command
	for _, name := range s.sortedTopics() {
		t := s.Topics[name]
		for _, p := range t.Partitions {
			if c, ok := planPartition(name, p, alive); ok {
				out = append(out, c)
			}
		}
	}
	return out
}

func planPartition(topic string, p bus.PartitionAssignment, alive map[int32]bool) (command, bool) {
	liveISR := make([]int32, 0, len(p.ISR))
	for _, r := range p.ISR {
		if alive[r] {
			liveISR = append(liveISR, r)
		}
	}
	cmd := command{Op: opUpdatePartition, Name: topic, Partition: p.Partition, LeaderEpoch: p.LeaderEpoch}
	if p.Leader >= 0 && alive[p.Leader] {
		if len(liveISR) == len(p.ISR) {
			return command{}, false
		}
		cmd.Leader, cmd.ISR = p.Leader, liveISR
		return cmd, true
	}
	// The leader is dead or there is none: the first live ISR member in
	// replica order leads.
	for _, r := range p.Replicas {
		if slices.Contains(liveISR, r) {
			cmd.Leader, cmd.ISR = r, liveISR
			return cmd, true
		}
	}
	if p.Leader == -1 {
		return command{}, false // still offline
	}
	cmd.Leader, cmd.ISR = -1, slices.Clone(p.ISR)
	return cmd, true
}

// planRegistrations returns the register_node commands for live members
// that are not registered, or registered with other addresses.
func planRegistrations(s *state, members []gossip.Member) []command {
	var out []command
	for _, m := range members {
		if m.State != gossip.StateAlive || m.QUIC == "" {
			continue
		}
		rec := nodeRecord{ID: m.ID, QUIC: m.QUIC, Kafka: m.Kafka, HTTP: m.HTTP, Rack: m.Rack, Gossip: m.Addr}
		if cur, ok := s.Nodes[m.ID]; !ok || cur != rec {
			out = append(out, command{Op: opRegisterNode, Node: &rec})
		}
	}
	return out
}

// serverChange is one change to the Raft configuration.
type serverChange struct {
	Kind string // "voter" (add or promote), "nonvoter" (add), "remove"
	ID   int32
	Addr string
}

// planServers returns the Raft configuration changes that follow gossip:
// members that left gracefully are removed (never self); live members not
// in the configuration are added, as voters while there are fewer than
// voterCap voters, else as non-voters; live non-voters are promoted while
// voters are below the cap; a member whose address changed is re-added.
// Dead (not left) members stay: they may come back.
func planServers(cfg raft.Configuration, members []gossip.Member, self int32, voterCap int) []serverChange {
	type srv struct {
		addr  string
		voter bool
	}
	servers := map[int32]srv{}
	voters := 0
	for _, s := range cfg.Servers {
		id, err := strconv.ParseInt(string(s.ID), 10, 32)
		if err != nil {
			continue
		}
		v := s.Suffrage == raft.Voter
		servers[int32(id)] = srv{addr: string(s.Address), voter: v}
		if v {
			voters++
		}
	}
	var out []serverChange
	for _, m := range members {
		if m.State != gossip.StateLeft || m.ID == self {
			continue
		}
		if s, ok := servers[m.ID]; ok {
			out = append(out, serverChange{Kind: "remove", ID: m.ID})
			if s.voter {
				voters--
			}
			delete(servers, m.ID)
		}
	}
	for _, m := range members {
		if m.State != gossip.StateAlive || m.QUIC == "" {
			continue
		}
		s, ok := servers[m.ID]
		switch {
		case !ok && voters < voterCap, ok && !s.voter && voters < voterCap:
			out = append(out, serverChange{Kind: "voter", ID: m.ID, Addr: m.QUIC})
			voters++
		case !ok:
			out = append(out, serverChange{Kind: "nonvoter", ID: m.ID, Addr: m.QUIC})
		case s.addr != m.QUIC && s.voter:
			out = append(out, serverChange{Kind: "voter", ID: m.ID, Addr: m.QUIC})
		case s.addr != m.QUIC:
			out = append(out, serverChange{Kind: "nonvoter", ID: m.ID, Addr: m.QUIC})
		}
	}
	return out
}

// planBootstrap decides whether this node bootstraps the metadata group,
// and with which configuration. It does when no live member has Raft state
// yet, at least expect members are live, and this node is among the expect
// lowest ids; the configuration is exactly those nodes, the first voterCap
// of them voters. Every node of the set, seeing the same members, computes
// the same configuration, which Raft accepts from each.
func planBootstrap(members []gossip.Member, self int32, expect, voterCap int) (raft.Configuration, bool) {
	var cands []gossip.Member
	for _, m := range members {
		if m.State != gossip.StateAlive {
			continue
		}
		if m.Raft {
			return raft.Configuration{}, false
		}
		if m.QUIC != "" {
			cands = append(cands, m)
		}
	}
	if len(cands) < expect {
		return raft.Configuration{}, false
	}
	slices.SortFunc(cands, func(a, b gossip.Member) int { return cmp.Compare(a.ID, b.ID) })
	cands = cands[:expect]
	if !slices.ContainsFunc(cands, func(m gossip.Member) bool { return m.ID == self }) {
		return raft.Configuration{}, false
	}
	var cfg raft.Configuration
	for i, m := range cands {
		suf := raft.Voter
		if i >= voterCap {
			suf = raft.Nonvoter
		}
		cfg.Servers = append(cfg.Servers, raft.Server{
			Suffrage: suf, ID: serverID(m.ID), Address: raft.ServerAddress(m.QUIC),
		})
	}
	return cfg, true
}

func serverID(id int32) raft.ServerID { return raft.ServerID(strconv.Itoa(int(id))) }

func parseServerID(id raft.ServerID) int32 {
	n, err := strconv.ParseInt(string(id), 10, 32)
	if err != nil {
		return -1
	}
	return int32(n)
}

// Request planning: validation and placement of client writes, on the
// controller. Each returns the command to commit.

func planCreateTopic(s *state, live []nodeRecord, spec bus.TopicSpec, id [16]byte, defPartitions int32, defRF int16,
	validate func(map[string]string) error) (command, error) {
	if err := bus.ValidTopicName(spec.Name); err != nil {
		return command{}, err
	}
	if _, ok := s.Topics[spec.Name]; ok {
		return command{}, fmt.Errorf("%w: %s", kerr.TopicAlreadyExists, spec.Name)
	}
	if spec.Partitions <= 0 {
		spec.Partitions = defPartitions
	}
	if spec.Partitions > 10000 {
		return command{}, fmt.Errorf("%w: %d partitions (max 10000)", kerr.InvalidPartitions, spec.Partitions)
	}
	if spec.ReplicationFactor <= 0 {
		spec.ReplicationFactor = defRF
	}
	if err := checkConfigs(spec.Configs, validate); err != nil {
		return command{}, err
	}
	parts, err := place(live, 0, spec.Partitions, int(spec.ReplicationFactor), s.Cursor)
	if err != nil {
		return command{}, err
	}
	ts := bus.TopicState{
		Name: spec.Name, ID: id, ReplicationFactor: spec.ReplicationFactor,
		Configs: maps.Clone(spec.Configs), Partitions: parts,
	}
	if ts.Configs == nil {
		ts.Configs = map[string]string{}
	}
	return command{Op: opCreateTopic, Topic: &ts}, nil
}

func planAddPartitions(s *state, live []nodeRecord, name string, total int32) (command, error) {
	t, ok := s.Topics[name]
	if !ok {
		return command{}, fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, name)
	}
	cur := int32(len(t.Partitions))
	if total <= cur || total > 10000 {
		return command{}, fmt.Errorf("%w: %s has %d partitions, asked for %d", kerr.InvalidPartitions, name, cur, total)
	}
	parts, err := place(live, cur, total-cur, int(t.ReplicationFactor), s.Cursor)
	if err != nil {
		return command{}, err
	}
	return command{Op: opAddPartitions, Name: name, Partitions: parts}, nil
}

func planAlterConfigs(s *state, name string, configs map[string]string, incremental bool,
	validate func(map[string]string) error) (command, error) {
	t, ok := s.Topics[name]
	if !ok {
		return command{}, fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, name)
	}
	if err := checkConfigs(mergeConfigs(t.Configs, configs, incremental), validate); err != nil {
		return command{}, err
	}
	return command{Op: opAlterConfigs, Name: name, Configs: maps.Clone(configs), Incremental: incremental}, nil
}

func checkConfigs(configs map[string]string, validate func(map[string]string) error) error {
	for k := range configs {
		if _, ok := bus.KnownConfigs[k]; !ok {
			return fmt.Errorf("%w: unknown config %q", kerr.InvalidConfig, k)
		}
	}
	if validate != nil {
		return validate(configs)
	}
	return nil
}
