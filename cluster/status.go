package cluster

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/hashicorp/raft"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/gossip"
)

// Status is the cluster as this node sees it, for `wisp cluster status`.
type Status struct {
	NodeID       int32
	ControllerID int32 // -1: none known
	// Raft: this node's state (Leader, Follower, Candidate, Shutdown), term
	// and log positions.
	RaftState    string
	Term         uint64
	LastIndex    uint64
	CommitIndex  uint64
	AppliedIndex uint64
	Nodes        []NodeStatus
	// Topics and partitions; Offline have no leader, UnderReplicated have
	// an ISR smaller than their replica set.
	Topics                    int
	Partitions                int
	OfflinePartitions         int
	UnderReplicatedPartitions int
}

// NodeStatus is one node in Status.
type NodeStatus struct {
	bus.NodeInfo
	// Gossip is the gossip state: "alive", "dead", "left", or "" when
	// this node never heard of it.
	Gossip string
	// Raft is the node's part in the metadata group: "voter", "nonvoter"
	// or "" (not a member).
	Raft       string
	Controller bool
	Registered bool // in the metadata (else only seen in gossip)
}

// Status reports the cluster as this node sees it.
func (n *Node) Status() Status {
	st := Status{NodeID: n.cfg.NodeID, ControllerID: n.ControllerID(), RaftState: n.raft.State().String()}
	stats := n.raft.Stats()
	st.Term, _ = strconv.ParseUint(stats["term"], 10, 64)
	st.LastIndex, _ = strconv.ParseUint(stats["last_log_index"], 10, 64)
	st.CommitIndex, _ = strconv.ParseUint(stats["commit_index"], 10, 64)
	st.AppliedIndex, _ = strconv.ParseUint(stats["applied_index"], 10, 64)

	suffrage := map[int32]string{}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			switch s.Suffrage {
			case raft.Voter:
				suffrage[parseServerID(s.ID)] = "voter"
			case raft.Nonvoter, raft.Staging:
				suffrage[parseServerID(s.ID)] = "nonvoter"
			}
		}
	}
	gossipState := map[int32]gossip.Member{}
	for _, m := range n.gsp.Known() {
		gossipState[m.ID] = m
	}
	seen := map[int32]bool{}
	for _, ni := range n.Nodes() {
		seen[ni.ID] = true
		ns := NodeStatus{NodeInfo: ni, Raft: suffrage[ni.ID], Controller: ni.ID == st.ControllerID, Registered: true}
		if m, ok := gossipState[ni.ID]; ok {
			ns.Gossip = m.State.String()
		}
		st.Nodes = append(st.Nodes, ns)
	}
	for _, m := range n.gsp.Known() {
		if seen[m.ID] {
			continue
		}
		st.Nodes = append(st.Nodes, NodeStatus{
			NodeInfo: bus.NodeInfo{ID: m.ID, QUIC: m.QUIC, Kafka: m.Kafka, HTTP: m.HTTP, Rack: m.Rack,
				Alive: m.State == gossip.StateAlive},
			Gossip: m.State.String(), Raft: suffrage[m.ID], Controller: m.ID == st.ControllerID,
		})
	}
	slices.SortFunc(st.Nodes, func(a, b NodeStatus) int { return cmp.Compare(a.ID, b.ID) })
	n.fsm.read(func(s *state) {
		st.Topics = len(s.Topics)
		for _, t := range s.Topics {
			for _, p := range t.Partitions {
				st.Partitions++
				if p.Leader < 0 {
					st.OfflinePartitions++
				}
				if len(p.ISR) < len(p.Replicas) {
					st.UnderReplicatedPartitions++
				}
			}
		}
	})
	return st
}
