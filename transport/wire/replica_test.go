package wire

// replicaSamples are samples() of the replication APIs.
func replicaSamples() []Message {
	return []Message{
		&ReplicaFetchRequest{Topic: "t", Partition: 2, ReplicaID: 3, LeaderEpoch: 4, Offset: 5, MaxBytes: 1 << 20, MaxWaitMs: 500},
		&ReplicaFetchResponse{HighWatermark: 9, LogStartOffset: 1, EndOffset: 12, Batches: []byte{1, 2, 3}},
		&ReplicaFetchResponse{Err: Err{Code: 74, Message: "fenced"}},
		&LeaderEpochEndRequest{Topic: "t", Partition: 2, Epoch: 3},
		&LeaderEpochEndResponse{Epoch: 2, EndOffset: 40},
		&FindCoordinatorRequest{Group: "g"},
		&FindCoordinatorResponse{NodeID: 2, Addr: "127.0.0.2:7070"},
	}
}
