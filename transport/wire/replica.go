package wire

// Node-to-node replication messages (docs/protocol.md, "Replication").
// Followers send them to the leader of a partition over wisp/1, each on
// its own stream.

// Replication API keys.
const (
	APIReplicaFetch   API = 0x0040
	APILeaderEpochEnd API = 0x0041
	// APIFindCoordinator asks which node coordinates a consumer group;
	// clients send that node their group requests.
	APIFindCoordinator API = 0x0042
)

func init() {
	apiNames[APIReplicaFetch] = "ReplicaFetch"
	apiNames[APILeaderEpochEnd] = "LeaderEpochEnd"
	apiNames[APIFindCoordinator] = "FindCoordinator"
}

// FindCoordinatorRequest names a consumer group.
type FindCoordinatorRequest struct {
	Group string
}

func (*FindCoordinatorRequest) API() API         { return APIFindCoordinator }
func (m *FindCoordinatorRequest) Codec(c *Coder) { c.str(&m.Group) }

// FindCoordinatorResponse names the group's coordinator node and its QUIC
// address.
type FindCoordinatorResponse struct {
	Err
	NodeID int32
	Addr   string
}

func (*FindCoordinatorResponse) API() API { return APIFindCoordinator }
func (m *FindCoordinatorResponse) Codec(c *Coder) {
	m.Err.codec(c)
	c.i32(&m.NodeID)
	c.str(&m.Addr)
}

// ReplicaFetchRequest is a follower's fetch: everything from Offset (the
// follower's end offset), long-polled for MaxWaitMs when there is nothing.
type ReplicaFetchRequest struct {
	Topic       string
	Partition   int32
	ReplicaID   int32
	LeaderEpoch int32
	Offset      int64
	MaxBytes    int32
	MaxWaitMs   int32
}

func (*ReplicaFetchRequest) API() API { return APIReplicaFetch }
func (m *ReplicaFetchRequest) Codec(c *Coder) {
	c.str(&m.Topic)
	c.i32(&m.Partition)
	c.i32(&m.ReplicaID)
	c.i32(&m.LeaderEpoch)
	c.i64(&m.Offset)
	c.i32(&m.MaxBytes)
	c.i32(&m.MaxWaitMs)
}

// ReplicaFetchResponse carries raw batches as the leader stores them.
type ReplicaFetchResponse struct {
	Err
	HighWatermark  int64
	LogStartOffset int64
	EndOffset      int64
	Batches        []byte
}

func (*ReplicaFetchResponse) API() API { return APIReplicaFetch }
func (m *ReplicaFetchResponse) Codec(c *Coder) {
	m.Err.codec(c)
	c.i64(&m.HighWatermark)
	c.i64(&m.LogStartOffset)
	c.i64(&m.EndOffset)
	c.bytes(&m.Batches)
}

// LeaderEpochEndRequest asks the leader where Epoch ends in its log
// (Kafka's OffsetsForLeaderEpoch).
type LeaderEpochEndRequest struct {
	Topic     string
	Partition int32
	Epoch     int32
}

func (*LeaderEpochEndRequest) API() API { return APILeaderEpochEnd }
func (m *LeaderEpochEndRequest) Codec(c *Coder) {
	c.str(&m.Topic)
	c.i32(&m.Partition)
	c.i32(&m.Epoch)
}

// LeaderEpochEndResponse answers with the largest epoch <= the asked one in
// the leader's log and the offset where it ends.
type LeaderEpochEndResponse struct {
	Err
	Epoch     int32
	EndOffset int64
}

func (*LeaderEpochEndResponse) API() API { return APILeaderEpochEnd }
func (m *LeaderEpochEndResponse) Codec(c *Coder) {
	m.Err.codec(c)
	c.i32(&m.Epoch)
	c.i64(&m.EndOffset)
}

func newReplicaRequest(a API) Message {
	switch a {
	case APIReplicaFetch:
		return new(ReplicaFetchRequest)
	case APILeaderEpochEnd:
		return new(LeaderEpochEndRequest)
	case APIFindCoordinator:
		return new(FindCoordinatorRequest)
	}
	return nil
}

func newReplicaResponse(a API) Message {
	switch a {
	case APIReplicaFetch:
		return new(ReplicaFetchResponse)
	case APILeaderEpochEnd:
		return new(LeaderEpochEndResponse)
	case APIFindCoordinator:
		return new(FindCoordinatorResponse)
	}
	return nil
}

// Set fills in an error; every response embeds Err, so this lets a server
// answer any of them with an error alone.
func (e *Err) Set(code int16, msg string) { e.Code, e.Message = code, msg }

// GroupOf names the consumer group a group request is about.
func GroupOf(m Message) (string, bool) {
	switch r := m.(type) {
	case *JoinGroupRequest:
		return r.Group, true
	case *SyncGroupRequest:
		return r.Group, true
	case *HeartbeatRequest:
		return r.Group, true
	case *LeaveGroupRequest:
		return r.Group, true
	case *OffsetCommitRequest:
		return r.Group, true
	case *OffsetFetchRequest:
		return r.Group, true
	case *DescribeGroupRequest:
		return r.Group, true
	case *GroupOffsetsRequest:
		return r.Group, true
	}
	return "", false
}
