//go:build !wasip1

package wisp

// Portable versions of mem_wasip1.go, for running handlers and tests
// natively (where unaligned unsafe access would trip checkptr).

func get32(b []byte, o int) uint32 { return le.Uint32(b[o:]) }
func get64(b []byte, o int) uint64 { return le.Uint64(b[o:]) }
