package bus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
)

// pidBlock is how many producer ids are reserved per write of the file.
const pidBlock = 1000

// pidAllocator hands out producer ids that are never reused: the file holds
// the first id not yet reserved, and it is advanced (and synced) a block at a
// time before any id of the block is handed out.
type pidAllocator struct {
	path string

	mu       sync.Mutex
	next     int64
	reserved int64
}

func openPIDAllocator(path string) (*pidAllocator, error) {
	a := &pidAllocator{path: path}
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("bus: %w", err)
	case len(raw) != 8:
		return nil, fmt.Errorf("bus: %s: corrupt (%d bytes)", path, len(raw))
	default:
		a.next = int64(binary.BigEndian.Uint64(raw))
	}
	a.reserved = a.next
	return a, nil
}

func (a *pidAllocator) allocate() (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next >= a.reserved {
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(a.reserved+pidBlock))
		if err := writeFileAtomic(a.path, buf[:]); err != nil {
			return 0, fmt.Errorf("bus: reserve producer ids: %w", err)
		}
		a.reserved += pidBlock
	}
	id := a.next
	a.next++
	return id, nil
}
