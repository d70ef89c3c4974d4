package bus

import "context"

// A clustered broker does not decide topics, replica placement, leaders or
// ISRs itself: the cluster metadata (one Raft group, package cluster) does,
// and every node applies the decisions in the same order. The two halves
// meet here:
//
//   - Cluster is what the broker asks of the metadata: create a topic,
//     shrink or expand an ISR, allocate producer ids. Each call returns once
//     the change is committed by Raft AND applied on this node, so a
//     CreateTopic followed by Topic sees the topic.
//   - ApplyTopic and ApplyTopicDeleted (on *Broker) are how the metadata's
//     state machine tells this node what was decided, in log order. They are
//     idempotent: a restart replays them from the Raft log or snapshot.
//
// A broker with Config.Cluster == nil is a single node and decides all of
// it locally (topic.json files), as before.

// NodeInfo is one cluster member as the metadata knows it.
type NodeInfo struct {
	ID    int32
	QUIC  string // host:port, udp
	Kafka string // host:port advertised to Kafka clients ("" when disabled)
	HTTP  string // host:port ("" when disabled)
	Rack  string
	Alive bool // seen alive by gossip
}

// PartitionAssignment is one partition's replicated state.
type PartitionAssignment struct {
	Partition int32
	// Replicas in preference order; the first is the preferred leader.
	Replicas []int32
	// Leader is the node that accepts writes, -1 when no replica in the
	// ISR is alive (the partition is offline; unclean election is off).
	Leader int32
	// LeaderEpoch grows by one with every leader change; writes and
	// fetches carrying an older epoch are fenced.
	LeaderEpoch int32
	// ISR is the in-sync replicas, the leader included.
	ISR []int32
}

// TopicState is a topic as the cluster metadata holds it.
type TopicState struct {
	Name              string
	ID                [16]byte
	ReplicationFactor int16
	Configs           map[string]string // the topic's own overrides
	Partitions        []PartitionAssignment
}

// Cluster is the cluster metadata as the broker sees it. The errors are
// kerr errors where Kafka has one (kerr.NotController while no controller
// is reachable, kerr.FencedLeaderEpoch for a stale AlterISR, ...), wrapped
// with detail.
type Cluster interface {
	// CreateTopic places replicas on the live nodes (rack-aware when racks
	// are set) and commits the topic.
	CreateTopic(ctx context.Context, spec TopicSpec) error
	DeleteTopic(ctx context.Context, name string) error
	AlterTopicConfigs(ctx context.Context, name string, configs map[string]string, incremental bool) error
	AddPartitions(ctx context.Context, name string, total int32) error
	// AlterISR sets the ISR of a partition this node leads. It fails with
	// kerr.FencedLeaderEpoch when leaderEpoch is not the current one (this
	// node was deposed) and kerr.NotLeaderForPartition when this node is
	// not the leader.
	AlterISR(ctx context.Context, topic string, partition, leaderEpoch int32, isr []int32) error
	// AllocateProducerIDs reserves n consecutive producer ids, unique in
	// the cluster, and returns the first.
	AllocateProducerIDs(ctx context.Context, n int64) (first int64, err error)
	// Nodes lists the registered nodes, this one included.
	Nodes() []NodeInfo
	// ControllerID is the node leading the metadata group, -1 if none.
	ControllerID() int32
}
