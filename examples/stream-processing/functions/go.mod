// The stream-processing functions are WebAssembly modules (GOOS=wasip1),
// so they are their own module: the main module's `go build ./...` never
// sees them.
module github.com/wispbus/wisp/examples/stream-processing/functions

go 1.24

require github.com/wispbus/wisp/sdk-wasm v0.0.0

replace github.com/wispbus/wisp/sdk-wasm => ../../../sdk-wasm
