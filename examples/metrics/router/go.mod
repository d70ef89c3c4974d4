// The metrics router is a WebAssembly module (GOOS=wasip1), so it is its
// own module: the main module's `go build ./...` never sees it.
module github.com/wispbus/wisp/examples/metrics/router

go 1.24

require github.com/wispbus/wisp/sdk-wasm v0.0.0

replace github.com/wispbus/wisp/sdk-wasm => ../../../sdk-wasm
