module github.com/wispbus/wisp/sdk-wasm

go 1.24
