// Package httpapi is wisp's HTTP frontend: produce, consume, admin,
// Prometheus metrics and health checks, as a thin adapter onto a
// *bus.Broker, plus the produce subset of Confluent REST Proxy v2.
//
// # Endpoints
//
//	POST   /v1/topics/{topic}/records          produce (JSON body, or NDJSON stream); ?acks=0|1|all
//	GET    /v1/topics/{topic}/records          read: ?partition=0&offset=earliest&max=100&timeout_ms=0
//	GET    /v1/topics/{topic}/records/stream   server-sent events tail: ?partition=0&offset=latest
//	GET    /v1/topics                          {"topics":[..]}
//	POST   /v1/topics                          {"name","partitions","replication_factor","configs"} → 201
//	GET    /v1/topics/{topic}                  one topic, with effective configs and partition offsets
//	DELETE /v1/topics/{topic}                  204
//	GET    /v1/groups                          {"groups":[..]} with lag per partition
//	POST   /topics/{topic}                     REST Proxy v2 produce (json and binary embedded formats)
//	POST   /topics/{topic}/partitions/{p}      REST Proxy v2 produce to one partition
//	GET    /topics, /topics/{topic}            REST Proxy v2 metadata
//	GET    /healthz, /readyz, /metrics
//
// and, when the node runs functions (MountFunctions; docs/functions.md):
//
//	POST   /v1/functions                       deploy: multipart/form-data, parts "manifest" (JSON) and "module" → 201
//	GET    /v1/functions                       {"functions":[..]}
//	GET    /v1/functions/{name}                one function, with manifest and partitions
//	GET    /v1/functions/{name}/logs           {"lines":[..]}; ?since=10m|RFC 3339|ms
//	POST   /v1/functions/{name}/pause|resume   204
//	DELETE /v1/functions/{name}                204
//
// # Producing
//
// A JSON body (Content-Type application/json) is
//
//	{"records":[{"key":..,"value":..,"partition":0,"headers":{"h":"v"},"timestamp":1700000000000}],
//	 "key_format":"json","value_format":"json"}
//
// Every field but records is optional. With the json format (the default) a
// JSON string is stored as the string's bytes and any other JSON value as
// its compact JSON text; null (or absent) is a null key or a null value (a
// tombstone). With "binary" the field is a base64 string. Formats can be
// set for the whole body or per record. Headers are an object (order kept)
// or an array [{"key":..,"value":..,"value_format":"binary"}] (which allows
// repeated names). The timestamp is milliseconds since the epoch or an RFC
// 3339 string; absent or 0 means the time of the produce. Unknown fields
// are rejected, so that a misspelt "vaule" cannot turn into a tombstone.
//
// The whole body is decoded and validated, and the topic resolved, before
// anything is written: a bad body writes nothing. A record goes to its
// "partition" if given, else, if it has a key, to Java Kafka's partition
// for that key (murmur2(key) & 0x7fffffff % partitions), else to the
// request's round-robin partition: all unkeyed records of a request go to
// one partition, the next request to the next one (like Kafka's sticky
// partitioner). The records of a request to one partition are appended as
// one Broker.Produce (one batch, or several concatenated when the topic's
// max.message.bytes requires), so they are written all or not at all. The
// answer lists each record's partition and offset in request order:
//
//	{"offsets":[{"partition":0,"offset":12},{"partition":1,"offset":40}]}
//
// 200 when all are written; when a partition's append fails, its records
// carry "error_code" and "error" and the status is 207 (some written) or
// the error's status (none written). With acks=0 the answer (202, offsets
// -1) is sent before the append. An unknown topic is created when the
// broker auto-creates topics, else the answer is 40401.
//
// With Content-Type application/x-ndjson the body is a stream of records,
// one JSON object per line, and the answer a stream of reports, one per
// record line and flushed as they are ready:
//
//	{"line":1,"partition":0,"offset":12}
//	{"line":2,"error_code":42201,"error":"value: want a base64 string (format binary)"}
//
// Lines are independent: a bad line is reported and not written. Lines
// that have already arrived are produced together, one batch per
// partition. ?key_format= and ?value_format= set the formats for the
// stream. The stream has no total size limit; each line is limited to
// Config.MaxBodyBytes. Blank lines are skipped.
//
// # REST Proxy v2
//
// POST /topics/{topic} with Content-Type application/vnd.kafka.json.v2+json
// or application/vnd.kafka.binary.v2+json and {"records":[{"key","value",
// "partition"}]}. As in Confluent's proxy, the json format stores the JSON
// text of keys and values (a string keeps its quotes, unlike wisp's own
// json format) and binary stores base64-decoded bytes. The answer is
//
//	{"key_schema_id":null,"value_schema_id":null,
//	 "offsets":[{"partition":0,"offset":12,"error_code":null,"error":null}]}
//
// in application/vnd.kafka.v2+json. A record the broker refuses has a null
// partition and offset and error_code 50002 (50003 when retriable), with
// HTTP 200, as REST Proxy does. Schema formats (avro, jsonschema,
// protobuf) get 41501.
//
// # Reading
//
// GET .../records answers a JSON array of records (at most max, possibly
// empty) from offset, and the headers X-Wisp-Next-Offset and
// X-Wisp-High-Watermark. With timeout_ms it waits up to that long when
// nothing is there yet. Each record is
//
//	{"topic":"t","partition":0,"offset":12,"timestamp":1700000000000,
//	 "key":"k","value":"v","headers":[{"key":"h","value":"x"}]}
//
// A key, value or header value that is valid UTF-8 is a JSON string of its
// bytes; otherwise it is base64 and marked with "key_format":"binary",
// "value_format":"binary" or, in a header, "value_format":"binary". Null
// stays null. A record read this way can be posted back unchanged and
// produces the same bytes.
//
// GET .../records/stream is a text/event-stream: each record is an event
// "record" with id = its offset and the record JSON as data. It starts at
// the high watermark (new records only) unless offset= or Last-Event-ID
// says otherwise, waits for new records with Broker.Watch, sends ": ping"
// comments every 15 s, and ends when the client goes or the server
// closes; a failure ends it with an "error" event.
//
// # Errors
//
// Errors are {"error_code":..,"message":..}; as in REST Proxy the HTTP
// status is the first three digits of the code:
//
//	40001 400 malformed JSON (body or NDJSON line)
//	40002 400 bad query or path parameter (acks, partition, offset, ...)
//	40401 404 topic not found (produce with auto-creation off, read, admin)
//	40402 404 partition not found
//	40403 404 function not found
//	40901 409 topic already exists
//	41301 413 body, NDJSON line or single record over the limit
//	41501 415 Content-Type not accepted by the endpoint
//	41601 416 offset out of range
//	42201 422 well-formed JSON that is not a valid record (bad base64, wrong type, unknown field)
//	42202 422 invalid topic name, partition count, replication factor or config
//	42203 422 invalid function manifest, or a module that is rejected
//	50001 500 unexpected server error
//	50002 500 broker error, not retriable
//	50003 500 retriable broker error (timeout, storage): retry
//	50301 503 broker closed or server shutting down
//
// Unknown routes get net/http's plain 404 and 405.
//
// # Metrics
//
// /metrics serves internal/metrics.Registry (request latency per API,
// Go and process metrics) together with counters read from the broker at
// scrape time: wisp_topic_records_in_total, wisp_topic_bytes_in_total,
// wisp_topic_records_out_total, wisp_topic_bytes_out_total and
// wisp_topic_size_bytes per topic, and wisp_consumer_group_lag per group,
// topic and partition.
package httpapi
