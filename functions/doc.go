// Package functions deploys and runs wisp functions: WebAssembly modules
// (see package wasm and docs/abi.md) that read an input topic and write
// records to declared output topics, next to the data.
//
//	m, err := functions.Open(functions.Config{DataDir: "wisp-data/functions"}, broker)
//	defer m.Close() // before broker.Close
//	info, err := m.Deploy(ctx, functions.Manifest{
//		Name: "mask", Input: "signups", Outputs: []string{"signups-clean"}, DLQ: "signups-dlq",
//	}, moduleBytes)
//
// Deployments are durable (module bytes content-addressed and manifests
// under DataDir) and resume after a restart. Each input partition has a
// worker that commits its progress under the consumer group
// "wisp.fn.<name>" and writes outputs with idempotent producer batches, so
// that a crash and replay writes nothing twice (docs/functions.md explains
// the scheme). Failing batches are retried, then bisected, and failing
// records dead-lettered; without a dead-letter topic the function stops in
// state failed. TestRun runs a module over NDJSON records without a broker.
package functions
