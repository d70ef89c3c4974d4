package bus

// Acks is how much durability a produce waits for.
type Acks int8

// The acks levels of the Kafka protocol.
const (
	AcksNone   Acks = 0  // no response wanted; the broker still appends
	AcksLeader Acks = 1  // the leader has the batch (and, with flush=always, fsynced it)
	AcksAll    Acks = -1 // every in-sync replica has it
)

// Special timestamps for ListOffset, as in Kafka.
const (
	Latest   int64 = -1
	Earliest int64 = -2
)

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name              string
	Partitions        int32 // <= 0: Config.DefaultPartitions
	ReplicationFactor int16 // <= 0: 1
	Configs           map[string]string
}

// TopicInfo describes an existing topic.
type TopicInfo struct {
	Name              string
	ID                [16]byte
	ReplicationFactor int16
	Configs           map[string]string // the topic's own overrides
	Effective         map[string]string // every key with its effective value
	Partitions        []PartitionInfo
}

// PartitionInfo describes one partition.
type PartitionInfo struct {
	Partition      int32
	Leader         int32
	LeaderEpoch    int32
	Replicas       []int32
	ISR            []int32
	LogStartOffset int64
	HighWatermark  int64
	EndOffset      int64
	SizeBytes      int64
	Stats          PartitionStats
}

// PartitionStats are monotonic counters since the broker started.
type PartitionStats struct {
	RecordsIn  int64
	BytesIn    int64
	RecordsOut int64
	BytesOut   int64
}

// ProduceResult is the outcome of an append.
type ProduceResult struct {
	BaseOffset     int64 // offset of the first record of the first batch
	LastOffset     int64 // offset of the last record of the last batch
	LogAppendTime  int64 // -1 unless the topic uses LogAppendTime
	LogStartOffset int64
	Duplicate      bool // an idempotent retry of an already written batch; offsets are the original ones
}

// FetchResult holds whole RecordBatch v2 batches starting at or before the
// requested offset.
type FetchResult struct {
	Batches          []byte
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
}
