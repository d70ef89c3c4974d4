//go:build !wasip1

package wisp

// Portable versions of mem_wasip1.go, for running handlers and tests
// natively (where unaligned unsafe access would trip checkptr).

func get32(b []byte, o int) uint32    { return le.Uint32(b[o:]) }
func get64(b []byte, o int) uint64    { return le.Uint64(b[o:]) }
func put32(b []byte, o int, v uint32) { le.PutUint32(b[o:], v) }
func put64(b []byte, o int, v uint64) { le.PutUint64(b[o:], v) }
