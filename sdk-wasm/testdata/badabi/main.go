// Command badabi exports the wisp functions but claims ABI version 99.
package main

import "unsafe"

var buf = make([]byte, 1<<16)

//go:wasmexport wisp_abi_version
func version() int32 { return 99 }

//go:wasmexport wisp_buffer
func buffer(size int32) unsafe.Pointer { return unsafe.Pointer(&buf[0]) }

//go:wasmexport wisp_process
func process(ptr unsafe.Pointer, n int32) int64 { return 0 }

func main() {}
