// Package client is wisp's Go client library. It speaks wisp's native
// protocol over QUIC (see docs/protocol.md): one connection per node, one
// QUIC stream per request, a long-lived stream per node for pipelined
// produce and one fetch session per node per consumer, on which the server
// pushes record batches as they are written.
//
// A Client is cluster-aware, as Kafka clients are: the Servers option only
// seeds it. From the cluster metadata it learns every node and each
// partition's leader; it produces to and fetches from the leader, sends
// group requests to the group's coordinator, and follows leadership moves
// (NOT_LEADER_FOR_PARTITION, a node that stops answering, ...) by
// refreshing the metadata and retrying there. Idempotent retries keep their
// producer id and sequences, so a failover neither duplicates nor reorders
// records.
//
// One Client produces, administers and hands out Consumers:
//
//	c, err := client.New(ctx, client.Servers("127.0.0.1:7070"))
//	if err != nil { ... }
//	defer c.Close()
//
//	// Produce: asynchronous with a callback, or synchronous.
//	c.Produce(ctx, &client.Record{Topic: "events", Key: []byte("k"), Value: []byte("v")},
//		func(r *client.Record, err error) { ... })
//	err = c.ProduceSync(ctx, &client.Record{Topic: "events", Value: []byte("v")})
//
//	// Consume as a member of a group.
//	cons, err := c.NewConsumer(ctx, client.Topics("events"), client.Group("billing"))
//	defer cons.Close(ctx)
//	for rec, err := range cons.Records(ctx) {
//		if err != nil { ... }
//		handle(rec)
//	}
//
// Records are built into Kafka RecordBatch v2 by the client; the broker
// stores and serves those bytes unchanged. Keys are partitioned exactly as
// the Java producer does (murmur2), so Kafka clients and wisp clients put the
// same key on the same partition, and consumer groups use Kafka's "consumer"
// protocol type so Kafka consumers and wisp consumers can share a group.
//
// Errors from the broker wrap franz-go kerr values (test with errors.Is, for
// example errors.Is(err, kerr.UnknownTopicOrPartition)); IsRetryable tells
// transient failures from permanent ones.
package client
