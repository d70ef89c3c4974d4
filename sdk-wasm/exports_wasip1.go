//go:build wasip1

// The functions here are called by the host (go:wasmexport), which
// staticcheck cannot see.
//
//lint:file-ignore U1000 exported to the host with go:wasmexport

package wisp

import "unsafe"

// The module's one writer, decoding state and input buffer (the host
// writes each batch into input, see wisp_buffer), reused batch to batch.
var (
	theWriter batchWriter
	state     batchState
	input     []byte
)

// sliceAddr is the guest address of b's first byte.
func sliceAddr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

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
