// Package bus is the broker core of wisp with no network code: topics,
// partitions and their logs, idempotent producer state, committed offsets and
// the consumer-group coordinator, exposed as one Go API.
//
// Every frontend (the native QUIC protocol in transport, the Kafka wire
// listener in kafkaapi, the HTTP endpoint in httpapi) is a thin adapter onto a
// *Broker, so a feature exists once and every protocol gets it. Errors are
// franz-go kerr values (wrapped), so each frontend maps them to the same
// wire codes:
//
//	b, err := bus.Open(bus.DefaultConfig())
//	...
//	_, err = b.CreateTopic(ctx, bus.TopicSpec{Name: "events", Partitions: 3})
//	res, err := b.Produce(ctx, "events", 0, recordBatchV2, bus.AcksLeader)
//	f, err := b.Fetch(ctx, "events", 0, res.BaseOffset, 1<<20)
//
// Lock order: Broker.mu before Partition.mu; neither is held while waiting
// for an fsync or for data.
package bus
