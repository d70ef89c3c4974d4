package growbuf

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadFull reads n bytes from inputs of every size around the chunk
// boundaries: the result is the input's first n bytes, or io.EOF (nothing
// there) or io.ErrUnexpectedEOF (less than n).
func FuzzReadFull(f *testing.F) {
	f.Add(uint32(0), uint32(0))
	f.Add(uint32(10), uint32(20))
	f.Add(uint32(Chunk), uint32(Chunk+1))
	f.Add(uint32(3*Chunk+5), uint32(3*Chunk+5))
	f.Add(uint32(5*Chunk), uint32(2*Chunk))
	f.Fuzz(func(t *testing.T, have, want uint32) {
		have, want = have%(6*Chunk), want%(6*Chunk)
		data := make([]byte, have)
		for i := range data {
			data[i] = byte(i * 31)
		}
		got, err := ReadFull(bytes.NewReader(data), int(want))
		switch {
		case have >= want:
			if err != nil || !bytes.Equal(got, data[:want]) {
				t.Fatalf("%d of %d bytes: %d bytes, %v", want, have, len(got), err)
			}
		case have == 0:
			if !errors.Is(err, io.EOF) {
				t.Fatalf("nothing there: %v", err)
			}
		default:
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%d of %d bytes: %v", want, have, err)
			}
		}
	})
}
