// Package kafkaapi is wisp's Kafka wire-protocol listener: a TCP server
// (default 127.0.0.1:9092) that adapts Kafka requests onto a *bus.Broker,
// so that existing Kafka clients (kafka-python, librdkafka/kcat, franz-go,
// the Java client) produce to and consume from wisp unchanged. Every
// request and response is encoded by franz-go's kmsg; the only
// hand-written decoding is the request header.
//
//	srv, err := kafkaapi.New(kafkaapi.DefaultConfig(), broker)
//	if err != nil { ... }
//	if err := srv.Start(); err != nil { ... }
//	defer srv.Close(ctx)
//
// It is a thin adapter: topics, the consumer-group coordinator and the
// committed offsets are the broker's, shared with the native QUIC protocol
// and the HTTP API. Kafka members and native members can share a group.
//
// # APIs
//
// ApiVersions advertises exactly these, with these version ranges:
//
//	API                      versions  notes
//	Produce (0)              0-11      RecordBatch v2 only (below)
//	Fetch (1)                4-16      long poll; v13+ by topic id; no fetch sessions
//	ListOffsets (2)          0-6       earliest (-2), latest (-1), by timestamp
//	Metadata (3)             0-12      auto-creation; v12 by topic id
//	OffsetCommit (8)         0-9
//	OffsetFetch (9)          0-8       v8: several groups
//	FindCoordinator (10)     0-4       v4: batched keys; this node coordinates every group
//	JoinGroup (11)           0-9
//	Heartbeat (12)           0-4
//	LeaveGroup (13)          0-5       v3+: batched members
//	SyncGroup (14)           0-5
//	DescribeGroups (15)      0-5
//	ListGroups (16)          0-5       v4 states filter, v5 types filter ("classic")
//	ApiVersions (18)         0-4
//	CreateTopics (19)        0-7
//	DeleteTopics (20)        0-6       v6: by name or topic id
//	InitProducerId (22)      0-5       idempotent producers only
//	OffsetForLeaderEpoch (23) 0-4
//	DescribeConfigs (32)     0-4       topics (bus.KnownConfigs + overrides) and this broker
//	AlterConfigs (33)        0-2       topics
//	CreatePartitions (37)    0-3
//	DeleteGroups (42)        0-3
//	IncrementalAlterConfigs (44) 0-1   topics; SET, DELETE, APPEND/SUBTRACT on cleanup.policy
//	OffsetDelete (47)        0
//	DescribeCluster (60)     0-1       brokers only
//
// The maximum versions are what kafka-python 2.0.2, librdkafka 2.x and
// franz-go 1.22 use, short of versions that need something wisp lacks:
// Produce v12+ and OffsetCommit/OffsetFetch v10 (transactions v2, topic
// ids in commits), Fetch v0-v3 (they need message format v0/v1), Fetch
// v17+ (replica-only fields), ListOffsets v7+ (the offset of the largest
// timestamp, which the bus does not keep), OffsetFetch v9 (KIP-848 member
// epochs), FindCoordinator v5+ (transactions, share groups),
// DescribeGroups v6 (unknown groups become errors), Metadata v13 (a
// rebootstrap error code).
//
// ApiVersions answers a version newer than 4 (librdkafka starts with the
// newest it knows, franz-go with v5) the way Kafka does: a v0 response
// with UNSUPPORTED_VERSION and the supported ranges, so the client retries
// with one of them. Flexible requests use request header v2; flexible
// responses use response header v1, except ApiVersions, whose response
// header is always v0.
//
// # Produce
//
// Only RecordBatch v2 (magic 2) is stored. Message sets of magic 0 or 1
// (Kafka before 0.11) get UNSUPPORTED_FOR_MESSAGE_FORMAT, corrupt batches
// CORRUPT_MESSAGE (the bus verifies each batch's CRC before anything is
// appended), and nothing of a refused partition reaches the log. Batches
// are stored as sent, whatever their codec (gzip, snappy raw or
// xerial-framed as kafka-python sends it, lz4, zstd): the broker never
// decompresses. Idempotent producers get their id from InitProducerId and
// the bus drops duplicate retries. acks=0 requests get no response.
//
// # Transactions
//
// Not supported. FindCoordinator for a transactional id and
// InitProducerId with a transactional id answer
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED with a message saying so: the
// code is not retriable, so a transactional producer fails at once
// instead of retrying until it times out. A Produce carrying a
// transactional id gets the same code per partition. AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn, TxnOffsetCommit and the other transaction APIs
// are not advertised; a client that sends one anyway has its connection
// closed, as for any API not listed above (SASL, ACLs, quotas,
// DeleteRecords, KIP-848 ConsumerGroupHeartbeat, share groups, ...).
//
// # Fetch
//
// A Fetch answers at once when it has MinBytes, an error, or
// MaxWaitMillis 0; otherwise it waits on bus.Broker.Watch of every
// partition asked for (no polling) until MinBytes is reached or
// MaxWaitMillis has passed. PartitionMaxBytes and MaxBytes are honoured,
// except that the first batch of the first partition with data is
// returned even when it is larger (KIP-74), so that a large batch cannot
// stall a consumer. Fetch sessions (KIP-227) are not kept: responses carry
// SessionID 0, which tells clients to send full requests, and incremental
// requests get FETCH_SESSION_ID_NOT_FOUND.
//
// # Connections
//
// Each connection has a reader goroutine, which reads, decodes and
// handles requests in order, and a writer goroutine, which writes the
// responses in the same order. A request that waits (a Fetch long poll, a
// JoinGroup until the rebalance completes, a SyncGroup until the leader's
// assignment) finishes on a goroutine of its own, so the requests behind it
// are still read and handled; its response still leaves before theirs.
// Requests that change state (Produce, commits) are handled one after the
// other, so pipelined produces to one partition append in request order.
// At most 64 requests per connection are in flight, and the reader stops
// reading while more than 64 MiB of answers wait for a client that does
// not read them; a connection to which nothing could be written for 30s is
// closed.
//
// A frame larger than Config.MaxRequestBytes (checked before allocating),
// an unknown API or version, or a body that does not decode closes the
// connection with a log line, after the responses to earlier requests are
// written. A panic in a handler (a bug) is recovered, logged with its
// stack, and closes the connection. The request path is fuzzed
// (FuzzRequest, seeds in testdata/fuzz).
//
// # Errors
//
// Errors of the bus wrap kerr values; their codes go on the wire as they
// are. An ended context becomes REQUEST_TIMED_OUT, a closing broker
// NOT_LEADER_OR_FOLLOWER (clients retry), anything else
// UNKNOWN_SERVER_ERROR. Every request is timed in the shared Prometheus
// histogram (frontend "kafka", API name from kmsg).
package kafkaapi
