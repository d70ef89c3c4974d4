//go:build wasip1

package wisp

import "unsafe"

// Inside WebAssembly, binary.LittleEndian's byte-by-byte loads and stores
// are not combined into one instruction. WebAssembly is little-endian and
// allows unaligned access, so the codec reads and writes whole words.
// Callers guarantee the bounds; the index expressions check them once more.

func get32(b []byte, o int) uint32 {
	_ = b[o+3]
	return *(*uint32)(unsafe.Pointer(&b[o]))
}

func get64(b []byte, o int) uint64 {
	_ = b[o+7]
	return *(*uint64)(unsafe.Pointer(&b[o]))
}

func put32(b []byte, o int, v uint32) {
	_ = b[o+3]
	*(*uint32)(unsafe.Pointer(&b[o])) = v
}

func put64(b []byte, o int, v uint64) {
	_ = b[o+7]
	*(*uint64)(unsafe.Pointer(&b[o])) = v
}
