package growbuf

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
)

func TestReadFull(t *testing.T) {
	data := make([]byte, 5*Chunk+17)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, n := range []int{0, 1, Chunk, Chunk + 1, 3 * Chunk, len(data)} {
		got, err := ReadFull(bytes.NewReader(data), n)
		if err != nil || !bytes.Equal(got, data[:n]) {
			t.Fatalf("n=%d: %d bytes, %v", n, len(got), err)
		}
	}
	for _, tc := range []struct {
		have, want int
		err        error
	}{{0, 10, io.EOF}, {0, 3 * Chunk, io.EOF}, {5, 10, io.ErrUnexpectedEOF}, {Chunk, 3 * Chunk, io.ErrUnexpectedEOF}, {2*Chunk + 3, 3 * Chunk, io.ErrUnexpectedEOF}} {
		if _, err := ReadFull(bytes.NewReader(data[:tc.have]), tc.want); !errors.Is(err, tc.err) {
			t.Errorf("%d of %d bytes: %v, want %v", tc.have, tc.want, err, tc.err)
		}
	}
}

// TestReadFullAllocatesWhatArrives: a claim of 1 GiB with 10 bytes behind
// it allocates a chunk, not the claim.
func TestReadFullAllocatesWhatArrives(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, err := ReadFull(bytes.NewReader(make([]byte, 10)), 1<<30); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 10*(Chunk+4096) {
		t.Fatalf("10 reads of a 1 GiB claim allocated %d bytes", d)
	}
}
