package wasm

import "github.com/tetratelabs/wazero/experimental"

// linearMemory backs one instance's linear memory and enforces that
// instance's limit: wazero's own limit (RuntimeConfig.WithMemoryLimitPages)
// is per runtime, and a node has one runtime for every function, each with
// its own limit. A refused growth makes memory.grow return -1 to the guest
// and is remembered, so that the failure it causes is reported as
// ErrMemoryLimit rather than as whatever the guest did next.
type linearMemory struct {
	limit   uint64
	buf     []byte
	refused bool
}

var _ experimental.LinearMemory = (*linearMemory)(nil)

// Reallocate grows the memory to size bytes, keeping its contents. Capacity
// grows geometrically (capped at the limit) so that a guest growing page by
// page does not copy its memory each time.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		m.refused = true
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	c := min(max(size, 2*uint64(cap(m.buf))), m.limit)
	nb := make([]byte, size, c)
	copy(nb, m.buf)
	m.buf = nb
	return nb
}

// Free drops the memory.
func (m *linearMemory) Free() { m.buf = nil }
