//go:build wasip1

package wisp

import "unsafe"

// input is the buffer the host writes each batch into (wisp_buffer).
var input []byte

//go:wasmexport wisp_abi_version
func wispABIVersion() int32 { return ABIVersion }

// wispBuffer returns the address of a buffer of at least size bytes for the
// next input batch, growing the previous one when needed.
//
//go:wasmexport wisp_buffer
func wispBuffer(size int32) uint32 {
	if size < 0 {
		return 0
	}
	if int(size) > cap(input) {
		input = make([]byte, max(int(size), 2*cap(input)))
	}
	input = input[:cap(input)]
	if len(input) == 0 {
		input = make([]byte, 64)
	}
	return sliceAddr(input)
}

// wispProcess handles the batch of n bytes at ptr and returns the output as
// address<<32 | length.
//
//go:wasmexport wisp_process
func wispProcess(ptr unsafe.Pointer, n uint32) uint64 {
	in := unsafe.Slice((*byte)(ptr), int(n))
	out := processBatch(&registered, &theWriter, &state, in)
	return uint64(sliceAddr(out))<<32 | uint64(uint32(len(out)))
}
