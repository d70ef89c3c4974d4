//go:build wasip1

package wisp

import "unsafe"

// Inside WebAssembly, binary.LittleEndian's byte-by-byte loads are not
// combined into one instruction. WebAssembly is little-endian and allows
// unaligned access, so the decoder reads whole words directly. Callers
// guarantee the bounds; the index expressions check them once more.
// (Stores stay byte-wise: measured, word stores were no faster here.)

func get32(b []byte, o int) uint32 {
	_ = b[o+3]
	return *(*uint32)(unsafe.Pointer(&b[o]))
}

func get64(b []byte, o int) uint64 {
	_ = b[o+7]
	return *(*uint64)(unsafe.Pointer(&b[o]))
}
