package client

import "time"

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name string
	// Partitions <= 0 uses the broker's default.
	Partitions int32
	// ReplicationFactor <= 0 uses the broker's default (1 on a single node).
	ReplicationFactor int16
	// Configs are topic config overrides with Kafka names, e.g.
	// "retention.ms", "cleanup.policy", "flush".
	Configs map[string]string
}

// TopicInfo describes a topic.
type TopicInfo struct {
	Name              string
	ID                [16]byte
	ReplicationFactor int16
	// Configs are the topic's own overrides; Effective has every key with
	// the value in force.
	Configs, Effective map[string]string
	Partitions         []PartitionInfo
}

// PartitionInfo describes one partition of a topic.
type PartitionInfo struct {
	Partition      int32
	Leader         int32
	LeaderEpoch    int32
	Replicas, ISR  []int32
	LogStartOffset int64
	HighWatermark  int64
	EndOffset      int64
	SizeBytes      int64
	// Counters since the broker started.
	RecordsIn, BytesIn, RecordsOut, BytesOut int64
}

// ClusterInfo describes the cluster the client is connected to.
type ClusterInfo struct {
	// NodeID is the id of the node that answered.
	NodeID int32
	// Version is the server's version string.
	Version string
	// Nodes lists every known node with its listener addresses.
	Nodes []NodeInfo
	// Status is the cluster metadata's view as JSON (see the cluster
	// package's Status); nil on a single node.
	Status []byte
}

// NodeInfo is one node and its listeners.
type NodeInfo struct {
	NodeID int32
	// Addrs maps a listener name ("quic", "kafka", "http") to its address.
	Addrs map[string]string
}

// PartitionOffset is one partition's answer to ListOffsets.
type PartitionOffset struct {
	Partition int32
	// Offset is -1 when AtTime found no record at or after the time.
	Offset int64
	// Timestamp of the record found by AtTime; zero otherwise.
	Timestamp time.Time
	Err       error
}

// GroupSummary is one entry of ListGroups.
type GroupSummary struct {
	Group, ProtocolType, State string
}

// GroupDescription describes a consumer group. Protocol, member metadata
// and assignments are known only while the group is Stable.
type GroupDescription struct {
	Group, State, ProtocolType, Protocol string
	Generation                           int32
	Members                              []GroupMember
	// Offsets holds the group's committed offsets with lag, sorted by topic
	// and partition.
	Offsets []GroupOffset
}

// GroupMember is one member of a group. For protocol type "consumer",
// Topics and Assigned are decoded from the member's metadata and
// assignment.
type GroupMember struct {
	MemberID, InstanceID, ClientID, ClientHost string
	Topics                                     []string
	Assigned                                   map[string][]int32
}

// GroupOffset is a group's committed offset on one partition, with the
// partition's high watermark and the lag between them.
type GroupOffset struct {
	Topic     string
	Partition int32
	// Committed is -1 when the group committed nothing for the partition.
	Committed     int64
	Metadata      string
	HighWatermark int64
	// Lag is HighWatermark - Committed (HighWatermark - LogStartOffset when
	// nothing is committed).
	Lag int64
}
