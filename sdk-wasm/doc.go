// Package wisp is the Go SDK for wisp functions: WebAssembly modules that the
// wisp event bus runs next to the data, once per input record, as transforms,
// filters and routers between topics.
//
// A function is a Go main package that registers one handler from an init
// function and is built as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o upper.wasm .
//
//	package main
//
//	import (
//		"bytes"
//
//		wisp "github.com/wispbus/wisp/sdk-wasm"
//	)
//
//	func init() {
//		wisp.Map(func(r wisp.Record) (wisp.Record, error) {
//			r.Value = bytes.ToUpper(r.Value)
//			return r, nil
//		})
//	}
//
//	func main() {} // required by the toolchain, never called
//
// Register from init, not from main: a reactor module is initialised (package
// initialisation runs) but its main function is never called. A module that
// registers nothing is rejected when it is deployed.
//
// # Handlers
//
// [Process] is the general form: for each input record the handler may call
// out.Write zero or more times, each time to one of the function's declared
// output topics ([ToTopic]; the first declared output when omitted).
// [Filter], [Map] and [Route] are shorthands built on it.
//
// A handler that returns an error, or panics, fails that one record: the
// host sends it to the function's dead-letter topic (with the error in the
// wisp.error header) and the other records of the batch are unaffected. The
// records a failed handler wrote before failing are discarded.
//
// # Memory and lifetimes
//
// The SDK decodes records in place: the Key, Value and header values of a
// [Record] point into a buffer that is reused for the next batch. Copy them
// (bytes.Clone) to keep them past the handler's return. Writing an input
// record unchanged (same Key, Value, Headers and Timestamp) is detected and
// sent to the host as a reference to the input, which costs almost nothing.
//
// # Environment, logs, time
//
// The environment holds only what the function's manifest declares, plus
// WISP_FUNCTION, WISP_FUNCTION_VERSION, WISP_INPUT_TOPIC and
// WISP_OUTPUT_TOPICS set by the host; read it with [Env] or os.Getenv.
// Anything written to stdout or stderr (fmt.Println, log, [Logf]) is captured
// into the function's log (`wisp fn logs NAME`), bounded and rate-limited.
// Clocks work; there is no filesystem and no network.
//
// # ABI
//
// The SDK implements version 1 of the wisp function ABI (docs/abi.md in the
// wisp repository): the host crosses into the module once per batch of
// records, never per record.
package wisp
