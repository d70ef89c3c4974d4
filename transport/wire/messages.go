package wire

// Message is a request or response of wisp/1.
type Message interface {
	// API is the key frames of this message carry.
	API() API
	// Codec encodes or decodes the message's fields in order.
	Codec(c *Coder)
}

// Err is the error part every response starts with: a Kafka error code
// (0 = none; see github.com/twmb/franz-go/pkg/kerr) and a message.
type Err struct {
	Code    int16
	Message string
}

func (e *Err) codec(c *coder) { c.i16(&e.Code); c.str(&e.Message) }

// Failed reports whether the error is set.
func (e Err) Failed() bool { return e.Code != 0 }

// ErrorFrame is sent by the server, instead of a response, before it ends
// a stream it cannot serve: a malformed, oversized or unsupported frame.
// StreamCode is the QUIC stream error code the stream is reset with.
type ErrorFrame struct {
	Err
	StreamCode uint64
}

func (*ErrorFrame) API() API { return APIError }
func (m *ErrorFrame) Codec(c *Coder) {
	m.Err.codec(c)
	v := int64(m.StreamCode)
	c.i64(&v)
	m.StreamCode = uint64(v)
}

// ---- produce ----

// ProduceRequest appends RecordBatch v2 batches to one partition. It is
// sent on a long-lived produce stream; the server answers requests of one
// partition in order (Corr echoes the request), and does not answer at all
// when Acks is 0.
type ProduceRequest struct {
	Corr      uint32
	Acks      int8
	TimeoutMs int32
	Topic     string
	Partition int32
	Batches   []byte
}

func (*ProduceRequest) API() API { return APIProduce }
func (m *ProduceRequest) Codec(c *Coder) {
	c.u32(&m.Corr)
	c.i8(&m.Acks)
	c.i32(&m.TimeoutMs)
	c.str(&m.Topic)
	c.i32(&m.Partition)
	c.bytes(&m.Batches)
}

// ProduceResponse answers a ProduceRequest.
type ProduceResponse struct {
	Corr uint32
	Err
	BaseOffset     int64
	LastOffset     int64
	LogAppendTime  int64
	LogStartOffset int64
	Duplicate      bool
}

func (*ProduceResponse) API() API { return APIProduce }
func (m *ProduceResponse) Codec(c *Coder) {
	c.u32(&m.Corr)
	m.Err.codec(c)
	c.i64(&m.BaseOffset)
	c.i64(&m.LastOffset)
	c.i64(&m.LogAppendTime)
	c.i64(&m.LogStartOffset)
	c.boolean(&m.Duplicate)
}

// InitProducerIDRequest asks for a new idempotent producer id.
type InitProducerIDRequest struct{}

func (*InitProducerIDRequest) API() API     { return APIInitProducerID }
func (*InitProducerIDRequest) Codec(*Coder) {}

// InitProducerIDResponse answers it.
type InitProducerIDResponse struct {
	Err
	ProducerID int64
	Epoch      int16
}

func (*InitProducerIDResponse) API() API { return APIInitProducerID }
func (m *InitProducerIDResponse) Codec(c *Coder) {
	m.Err.codec(c)
	c.i64(&m.ProducerID)
	c.i16(&m.Epoch)
}

// ---- fetch ----

// FetchPartition names a partition and the offset to read from.
type FetchPartition struct {
	Topic     string
	Partition int32
	Offset    int64
	MaxBytes  int32 // <= 0: the request's MaxBytes
}

func (p *FetchPartition) codec(c *coder) {
	c.str(&p.Topic)
	c.i32(&p.Partition)
	c.i64(&p.Offset)
	c.i32(&p.MaxBytes)
}

// FetchRequest reads once from several partitions, waiting up to MaxWaitMs
// for at least MinBytes.
type FetchRequest struct {
	MaxWaitMs  int32
	MinBytes   int32
	MaxBytes   int32
	Partitions []FetchPartition
}

func (*FetchRequest) API() API { return APIFetch }
func (m *FetchRequest) Codec(c *Coder) {
	c.i32(&m.MaxWaitMs)
	c.i32(&m.MinBytes)
	c.i32(&m.MaxBytes)
	array(c, &m.Partitions, 18, (*FetchPartition).codec)
}

// FetchedPartition is what one partition returned: whole RecordBatch v2
// batches (the first may start before the offset asked for).
type FetchedPartition struct {
	Topic     string
	Partition int32
	Err
	HighWatermark  int64
	LogStartOffset int64
	Batches        []byte
}

func (p *FetchedPartition) codec(c *coder) {
	c.str(&p.Topic)
	c.i32(&p.Partition)
	p.Err.codec(c)
	c.i64(&p.HighWatermark)
	c.i64(&p.LogStartOffset)
	c.bytes(&p.Batches)
}

// FetchResponse answers a FetchRequest.
type FetchResponse struct {
	Err
	Partitions []FetchedPartition
}

func (*FetchResponse) API() API { return APIFetch }
func (m *FetchResponse) Codec(c *Coder) {
	m.Err.codec(c)
	array(c, &m.Partitions, 30, (*FetchedPartition).codec)
}

// FetchSessionRequest opens a fetch session: the first and only frame the
// client sends on the stream. The server then pushes a FetchPush whenever
// a partition has records past its position, and advances the position;
// the session lasts until either side closes the stream.
type FetchSessionRequest struct {
	MaxBytes   int32 // per push; at least one batch is always sent
	Partitions []FetchPartition
}

func (*FetchSessionRequest) API() API { return APIFetchSession }
func (m *FetchSessionRequest) Codec(c *Coder) {
	c.i32(&m.MaxBytes)
	array(c, &m.Partitions, 18, (*FetchPartition).codec)
}

// FetchPush is one partition's new records in a fetch session. A push with
// an error (e.g. kerr.OffsetOutOfRange) removes the partition from the
// session; the client opens a new session to resume it.
type FetchPush struct {
	FetchedPartition
}

func (*FetchPush) API() API         { return APIFetchPush }
func (m *FetchPush) Codec(c *Coder) { m.FetchedPartition.codec(c) }

// ---- offsets ----

// ListOffsetsPartition asks for one partition's offset at Timestamp
// (-2 earliest, -1 latest, else ms since the epoch). Partition -1 means
// every partition of Topic.
type ListOffsetsPartition struct {
	Topic     string
	Partition int32
	Timestamp int64
}

func (p *ListOffsetsPartition) codec(c *coder) {
	c.str(&p.Topic)
	c.i32(&p.Partition)
	c.i64(&p.Timestamp)
}

// ListOffsetsRequest resolves timestamps to offsets.
type ListOffsetsRequest struct {
	Partitions []ListOffsetsPartition
}

func (*ListOffsetsRequest) API() API { return APIListOffsets }
func (m *ListOffsetsRequest) Codec(c *Coder) {
	array(c, &m.Partitions, 14, (*ListOffsetsPartition).codec)
}

// ListedOffset is one partition's answer; Offset -1 when no record is at
// or after the time.
type ListedOffset struct {
	Topic     string
	Partition int32
	Err
	Offset    int64
	Timestamp int64
}

func (p *ListedOffset) codec(c *coder) {
	c.str(&p.Topic)
	c.i32(&p.Partition)
	p.Err.codec(c)
	c.i64(&p.Offset)
	c.i64(&p.Timestamp)
}

// ListOffsetsResponse answers a ListOffsetsRequest.
type ListOffsetsResponse struct {
	Err
	Partitions []ListedOffset
}

func (*ListOffsetsResponse) API() API { return APIListOffsets }
func (m *ListOffsetsResponse) Codec(c *Coder) {
	m.Err.codec(c)
	array(c, &m.Partitions, 26, (*ListedOffset).codec)
}

// ---- metadata and topics ----

// MetadataRequest describes topics: the named ones (created with the
// broker's defaults first when AutoCreate and the broker allows it), or all
// when Topics is empty.
type MetadataRequest struct {
	Topics     []string
	AutoCreate bool
}

func (*MetadataRequest) API() API { return APIMetadata }
func (m *MetadataRequest) Codec(c *Coder) {
	c.strs(&m.Topics)
	c.boolean(&m.AutoCreate)
}

// Node is a node and its listener addresses by name ("quic", "kafka",
// "http").
type Node struct {
	NodeID int32
	Addrs  map[string]string
}

func (n *Node) codec(c *coder) {
	c.i32(&n.NodeID)
	c.strMap(&n.Addrs)
}

// PartitionMeta describes one partition.
type PartitionMeta struct {
	Partition      int32
	Leader         int32
	LeaderEpoch    int32
	Replicas       []int32
	ISR            []int32
	LogStartOffset int64
	HighWatermark  int64
	EndOffset      int64
	SizeBytes      int64
	RecordsIn      int64
	BytesIn        int64
	RecordsOut     int64
	BytesOut       int64
}

func (p *PartitionMeta) codec(c *coder) {
	c.i32(&p.Partition)
	c.i32(&p.Leader)
	c.i32(&p.LeaderEpoch)
	c.i32s(&p.Replicas)
	c.i32s(&p.ISR)
	c.i64(&p.LogStartOffset)
	c.i64(&p.HighWatermark)
	c.i64(&p.EndOffset)
	c.i64(&p.SizeBytes)
	c.i64(&p.RecordsIn)
	c.i64(&p.BytesIn)
	c.i64(&p.RecordsOut)
	c.i64(&p.BytesOut)
}

// TopicMeta describes one topic, or why it could not be.
type TopicMeta struct {
	Name string
	Err
	ID                [16]byte
	ReplicationFactor int16
	Configs           map[string]string
	Effective         map[string]string
	Partitions        []PartitionMeta
}

func (t *TopicMeta) codec(c *coder) {
	c.str(&t.Name)
	t.Err.codec(c)
	c.id16(&t.ID)
	c.i16(&t.ReplicationFactor)
	c.strMap(&t.Configs)
	c.strMap(&t.Effective)
	array(c, &t.Partitions, 84, (*PartitionMeta).codec)
}

// MetadataResponse answers a MetadataRequest.
type MetadataResponse struct {
	Err
	NodeID int32 // the node that answered
	Nodes  []Node
	Topics []TopicMeta
}

func (*MetadataResponse) API() API { return APIMetadata }
func (m *MetadataResponse) Codec(c *Coder) {
	m.Err.codec(c)
	c.i32(&m.NodeID)
	array(c, &m.Nodes, 8, (*Node).codec)
	array(c, &m.Topics, 36, (*TopicMeta).codec)
}

// CreateTopicRequest creates a topic.
type CreateTopicRequest struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Configs           map[string]string
}

func (*CreateTopicRequest) API() API { return APICreateTopic }
func (m *CreateTopicRequest) Codec(c *Coder) {
	c.str(&m.Name)
	c.i32(&m.Partitions)
	c.i16(&m.ReplicationFactor)
	c.strMap(&m.Configs)
}

// CreateTopicResponse answers it with the new topic.
type CreateTopicResponse struct {
	Err
	Topic TopicMeta
}

func (*CreateTopicResponse) API() API { return APICreateTopic }
func (m *CreateTopicResponse) Codec(c *Coder) {
	m.Err.codec(c)
	m.Topic.codec(c)
}

// DeleteTopicRequest deletes a topic.
type DeleteTopicRequest struct{ Name string }

func (*DeleteTopicRequest) API() API         { return APIDeleteTopic }
func (m *DeleteTopicRequest) Codec(c *Coder) { c.str(&m.Name) }

// AlterConfigsRequest changes a topic's configs; see
// bus.Broker.AlterTopicConfigs.
type AlterConfigsRequest struct {
	Name        string
	Configs     map[string]string
	Incremental bool
}

func (*AlterConfigsRequest) API() API { return APIAlterConfigs }
func (m *AlterConfigsRequest) Codec(c *Coder) {
	c.str(&m.Name)
	c.strMap(&m.Configs)
	c.boolean(&m.Incremental)
}

// AddPartitionsRequest grows a topic to Total partitions.
type AddPartitionsRequest struct {
	Name  string
	Total int32
}

func (*AddPartitionsRequest) API() API { return APIAddPartitions }
func (m *AddPartitionsRequest) Codec(c *Coder) {
	c.str(&m.Name)
	c.i32(&m.Total)
}

// SimpleResponse is the answer of requests that return only an error:
// DeleteTopic, AlterConfigs, AddPartitions, Heartbeat, OffsetCommit. Its
// API is the request's.
type SimpleResponse struct {
	Key API
	Err
}

func (m *SimpleResponse) API() API       { return m.Key }
func (m *SimpleResponse) Codec(c *Coder) { m.Err.codec(c) }

// ClusterInfoRequest asks who the cluster is.
type ClusterInfoRequest struct{}

func (*ClusterInfoRequest) API() API     { return APIClusterInfo }
func (*ClusterInfoRequest) Codec(*Coder) {}

// ClusterInfoResponse answers it.
type ClusterInfoResponse struct {
	Err
	NodeID  int32
	Version string
	Nodes   []Node
	// Status is the cluster metadata's view as JSON (controller, Raft
	// state, each node's gossip and Raft role, offline and
	// under-replicated partitions); empty on a single node.
	Status []byte
}

func (*ClusterInfoResponse) API() API { return APIClusterInfo }
func (m *ClusterInfoResponse) Codec(c *Coder) {
	m.Err.codec(c)
	c.i32(&m.NodeID)
	c.str(&m.Version)
	array(c, &m.Nodes, 8, (*Node).codec)
	c.bytes(&m.Status)
}

// ---- groups ----

// GroupProtocol is one assignment protocol a member supports.
type GroupProtocol struct {
	Name     string
	Metadata []byte
}

func (p *GroupProtocol) codec(c *coder) { c.str(&p.Name); c.bytes(&p.Metadata) }

// JoinGroupRequest is Kafka's JoinGroup. The server fills in the client
// host from the connection.
type JoinGroupRequest struct {
	Group, MemberID, InstanceID, ClientID, ProtocolType string
	Protocols                                           []GroupProtocol
	SessionTimeoutMs, RebalanceTimeoutMs                int32
	RequireKnownMemberID                                bool
}

func (*JoinGroupRequest) API() API { return APIJoinGroup }
func (m *JoinGroupRequest) Codec(c *Coder) {
	c.str(&m.Group)
	c.str(&m.MemberID)
	c.str(&m.InstanceID)
	c.str(&m.ClientID)
	c.str(&m.ProtocolType)
	array(c, &m.Protocols, 6, (*GroupProtocol).codec)
	c.i32(&m.SessionTimeoutMs)
	c.i32(&m.RebalanceTimeoutMs)
	c.boolean(&m.RequireKnownMemberID)
}

// GroupMember describes a member; Metadata is its metadata for the chosen
// protocol, Assignment (DescribeGroup of a Stable group only) its
// assignment.
type GroupMember struct {
	MemberID, InstanceID, ClientID, ClientHost string
	Metadata, Assignment                       []byte
}

func (m *GroupMember) codec(c *coder) {
	c.str(&m.MemberID)
	c.str(&m.InstanceID)
	c.str(&m.ClientID)
	c.str(&m.ClientHost)
	c.bytes(&m.Metadata)
	c.bytes(&m.Assignment)
}

// JoinGroupResponse answers a JoinGroupRequest; Members only for the
// leader. With kerr.MemberIDRequired, MemberID is the id to join with.
type JoinGroupResponse struct {
	Err
	Generation                                 int32
	ProtocolType, Protocol, LeaderID, MemberID string
	Members                                    []GroupMember
}

func (*JoinGroupResponse) API() API { return APIJoinGroup }
func (m *JoinGroupResponse) Codec(c *Coder) {
	m.Err.codec(c)
	c.i32(&m.Generation)
	c.str(&m.ProtocolType)
	c.str(&m.Protocol)
	c.str(&m.LeaderID)
	c.str(&m.MemberID)
	array(c, &m.Members, 16, (*GroupMember).codec)
}

// MemberAssignment is the leader's assignment for one member.
type MemberAssignment struct {
	MemberID   string
	Assignment []byte
}

func (a *MemberAssignment) codec(c *coder) { c.str(&a.MemberID); c.bytes(&a.Assignment) }

// SyncGroupRequest is Kafka's SyncGroup.
type SyncGroupRequest struct {
	Group, MemberID, InstanceID, ProtocolType, Protocol string
	Generation                                          int32
	Assignments                                         []MemberAssignment
}

func (*SyncGroupRequest) API() API { return APISyncGroup }
func (m *SyncGroupRequest) Codec(c *Coder) {
	c.str(&m.Group)
	c.str(&m.MemberID)
	c.str(&m.InstanceID)
	c.str(&m.ProtocolType)
	c.str(&m.Protocol)
	c.i32(&m.Generation)
	array(c, &m.Assignments, 6, (*MemberAssignment).codec)
}

// SyncGroupResponse carries the member's own assignment.
type SyncGroupResponse struct {
	Err
	Assignment []byte
}

func (*SyncGroupResponse) API() API { return APISyncGroup }
func (m *SyncGroupResponse) Codec(c *Coder) {
	m.Err.codec(c)
	c.bytes(&m.Assignment)
}

// HeartbeatRequest is Kafka's Heartbeat; the answer is a SimpleResponse.
type HeartbeatRequest struct {
	Group, MemberID, InstanceID string
	Generation                  int32
}

func (*HeartbeatRequest) API() API { return APIHeartbeat }
func (m *HeartbeatRequest) Codec(c *Coder) {
	c.str(&m.Group)
	c.str(&m.MemberID)
	c.str(&m.InstanceID)
	c.i32(&m.Generation)
}

// LeaveMember names a member leaving, by id or (static) by instance id.
type LeaveMember struct{ MemberID, InstanceID string }

func (l *LeaveMember) codec(c *coder) { c.str(&l.MemberID); c.str(&l.InstanceID) }

// LeaveGroupRequest removes members from a group.
type LeaveGroupRequest struct {
	Group   string
	Members []LeaveMember
}

func (*LeaveGroupRequest) API() API { return APILeaveGroup }
func (m *LeaveGroupRequest) Codec(c *Coder) {
	c.str(&m.Group)
	array(c, &m.Members, 4, (*LeaveMember).codec)
}

// LeaveGroupResponse has one error per member, in request order.
type LeaveGroupResponse struct {
	Err
	Members []Err
}

func (*LeaveGroupResponse) API() API { return APILeaveGroup }
func (m *LeaveGroupResponse) Codec(c *Coder) {
	m.Err.codec(c)
	array(c, &m.Members, 4, (*Err).codec)
}

// CommittedOffset is a group's offset on one partition.
type CommittedOffset struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

func (o *CommittedOffset) codec(c *coder) {
	c.str(&o.Topic)
	c.i32(&o.Partition)
	c.i64(&o.Offset)
	c.i32(&o.LeaderEpoch)
	c.str(&o.Metadata)
}

// OffsetCommitRequest commits offsets for a member of generation
// Generation; Generation -1 with an empty MemberID commits for a group
// without members (admin). The answer is a SimpleResponse.
type OffsetCommitRequest struct {
	Group, MemberID, InstanceID string
	Generation                  int32
	Offsets                     []CommittedOffset
}

func (*OffsetCommitRequest) API() API { return APIOffsetCommit }
func (m *OffsetCommitRequest) Codec(c *Coder) {
	c.str(&m.Group)
	c.str(&m.MemberID)
	c.str(&m.InstanceID)
	c.i32(&m.Generation)
	array(c, &m.Offsets, 20, (*CommittedOffset).codec)
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp *TopicPartition) codec(c *coder) { c.str(&tp.Topic); c.i32(&tp.Partition) }

// OffsetFetchRequest reads committed offsets: of Partitions, or all of the
// group's when empty.
type OffsetFetchRequest struct {
	Group      string
	Partitions []TopicPartition
}

func (*OffsetFetchRequest) API() API { return APIOffsetFetch }
func (m *OffsetFetchRequest) Codec(c *Coder) {
	c.str(&m.Group)
	array(c, &m.Partitions, 6, (*TopicPartition).codec)
}

// OffsetFetchResponse lists the committed offsets found (partitions without
// one are absent).
type OffsetFetchResponse struct {
	Err
	Offsets []CommittedOffset
}

func (*OffsetFetchResponse) API() API { return APIOffsetFetch }
func (m *OffsetFetchResponse) Codec(c *Coder) {
	m.Err.codec(c)
	array(c, &m.Offsets, 20, (*CommittedOffset).codec)
}

// ListGroupsRequest lists groups.
type ListGroupsRequest struct{}

func (*ListGroupsRequest) API() API     { return APIListGroups }
func (*ListGroupsRequest) Codec(*Coder) {}

// GroupListing is one group in ListGroupsResponse.
type GroupListing struct{ Group, ProtocolType, State string }

func (g *GroupListing) codec(c *coder) { c.str(&g.Group); c.str(&g.ProtocolType); c.str(&g.State) }

// ListGroupsResponse answers a ListGroupsRequest.
type ListGroupsResponse struct {
	Err
	Groups []GroupListing
}

func (*ListGroupsResponse) API() API { return APIListGroups }
func (m *ListGroupsResponse) Codec(c *Coder) {
	m.Err.codec(c)
	array(c, &m.Groups, 6, (*GroupListing).codec)
}

// GroupOffsetLag is a committed offset with the partition's high watermark
// and lag.
type GroupOffsetLag struct {
	Topic          string
	Partition      int32
	Committed      int64 // -1: none
	Metadata       string
	HighWatermark  int64
	LogStartOffset int64
	Lag            int64
}

func (o *GroupOffsetLag) codec(c *coder) {
	c.str(&o.Topic)
	c.i32(&o.Partition)
	c.i64(&o.Committed)
	c.str(&o.Metadata)
	c.i64(&o.HighWatermark)
	c.i64(&o.LogStartOffset)
	c.i64(&o.Lag)
}

// DescribeGroupRequest describes a group with its offsets and lag.
type DescribeGroupRequest struct{ Group string }

func (*DescribeGroupRequest) API() API         { return APIDescribeGroup }
func (m *DescribeGroupRequest) Codec(c *Coder) { c.str(&m.Group) }

// DescribeGroupResponse answers it.
type DescribeGroupResponse struct {
	Err
	Group, State, ProtocolType, Protocol string
	Generation                           int32
	Members                              []GroupMember
	Offsets                              []GroupOffsetLag
}

func (*DescribeGroupResponse) API() API { return APIDescribeGroup }
func (m *DescribeGroupResponse) Codec(c *Coder) {
	m.Err.codec(c)
	c.str(&m.Group)
	c.str(&m.State)
	c.str(&m.ProtocolType)
	c.str(&m.Protocol)
	c.i32(&m.Generation)
	array(c, &m.Members, 16, (*GroupMember).codec)
	array(c, &m.Offsets, 40, (*GroupOffsetLag).codec)
}

// GroupOffsetsRequest returns a group's offsets with lag: for every
// partition of Topics, or every partition the group committed when empty.
type GroupOffsetsRequest struct {
	Group  string
	Topics []string
}

func (*GroupOffsetsRequest) API() API { return APIGroupOffsets }
func (m *GroupOffsetsRequest) Codec(c *Coder) {
	c.str(&m.Group)
	c.strs(&m.Topics)
}

// GroupOffsetsResponse answers it, sorted by topic and partition.
type GroupOffsetsResponse struct {
	Err
	Offsets []GroupOffsetLag
}

func (*GroupOffsetsResponse) API() API { return APIGroupOffsets }
func (m *GroupOffsetsResponse) Codec(c *Coder) {
	m.Err.codec(c)
	array(c, &m.Offsets, 40, (*GroupOffsetLag).codec)
}

// NewRequest returns an empty request message for an API key, or nil for
// a key that is not a request (FetchPush, Error) or unknown.
func NewRequest(a API) Message {
	switch a {
	case APIProduce:
		return new(ProduceRequest)
	case APIFetch:
		return new(FetchRequest)
	case APIFetchSession:
		return new(FetchSessionRequest)
	case APIListOffsets:
		return new(ListOffsetsRequest)
	case APIMetadata:
		return new(MetadataRequest)
	case APICreateTopic:
		return new(CreateTopicRequest)
	case APIDeleteTopic:
		return new(DeleteTopicRequest)
	case APIAlterConfigs:
		return new(AlterConfigsRequest)
	case APIAddPartitions:
		return new(AddPartitionsRequest)
	case APIInitProducerID:
		return new(InitProducerIDRequest)
	case APIJoinGroup:
		return new(JoinGroupRequest)
	case APISyncGroup:
		return new(SyncGroupRequest)
	case APIHeartbeat:
		return new(HeartbeatRequest)
	case APILeaveGroup:
		return new(LeaveGroupRequest)
	case APIOffsetCommit:
		return new(OffsetCommitRequest)
	case APIOffsetFetch:
		return new(OffsetFetchRequest)
	case APIListGroups:
		return new(ListGroupsRequest)
	case APIDescribeGroup:
		return new(DescribeGroupRequest)
	case APIGroupOffsets:
		return new(GroupOffsetsRequest)
	case APIClusterInfo:
		return new(ClusterInfoRequest)
	}
	if m := newReplicaRequest(a); m != nil {
		return m
	}
	return newFunctionRequest(a)
}

// NewResponse returns an empty response message for an API key (the
// message the server answers a request of that key with), or nil.
func NewResponse(a API) Message {
	switch a {
	case APIProduce:
		return new(ProduceResponse)
	case APIFetch:
		return new(FetchResponse)
	case APIFetchSession, APIFetchPush:
		return new(FetchPush)
	case APIListOffsets:
		return new(ListOffsetsResponse)
	case APIMetadata:
		return new(MetadataResponse)
	case APICreateTopic:
		return new(CreateTopicResponse)
	case APIDeleteTopic, APIAlterConfigs, APIAddPartitions, APIHeartbeat, APIOffsetCommit:
		return &SimpleResponse{Key: a}
	case APIInitProducerID:
		return new(InitProducerIDResponse)
	case APIJoinGroup:
		return new(JoinGroupResponse)
	case APISyncGroup:
		return new(SyncGroupResponse)
	case APILeaveGroup:
		return new(LeaveGroupResponse)
	case APIOffsetFetch:
		return new(OffsetFetchResponse)
	case APIListGroups:
		return new(ListGroupsResponse)
	case APIDescribeGroup:
		return new(DescribeGroupResponse)
	case APIGroupOffsets:
		return new(GroupOffsetsResponse)
	case APIClusterInfo:
		return new(ClusterInfoResponse)
	case APIError:
		return new(ErrorFrame)
	}
	if m := newReplicaResponse(a); m != nil {
		return m
	}
	return newFunctionResponse(a)
}
