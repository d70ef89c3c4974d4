// Package growbuf reads length-prefixed messages without trusting the
// length: the buffer grows as the bytes arrive.
package growbuf

import (
	"io"
	"slices"
)

// Chunk is what ReadFull allocates before any byte has arrived.
const Chunk = 64 << 10

// ReadFull reads exactly n bytes from r into a new slice. Up to Chunk
// bytes it is one allocation; past that the slice starts at Chunk and
// doubles as the bytes arrive, instead of being allocated whole up front.
//
// A length field is only a claim: a peer that sends a header announcing
// 100 MiB and then nothing, on each of many connections or streams, must
// not cost the server 100 MiB each. This way it costs what it actually
// sent (at most twice that, copies included), plus Chunk per read in
// progress.
//
// Like io.ReadFull it returns io.EOF only when no byte was read, and
// io.ErrUnexpectedEOF when the stream ends part way.
func ReadFull(r io.Reader, n int) ([]byte, error) {
	if n <= Chunk {
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			return nil, err
		}
		return p, nil
	}
	p := make([]byte, 0, Chunk)
	for len(p) < n {
		if len(p) == cap(p) {
			p = slices.Grow(p, min(cap(p), n-len(p)))
		}
		m, err := io.ReadFull(r, p[len(p):min(cap(p), n)])
		p = p[:len(p)+m]
		if err != nil {
			if err == io.EOF && len(p) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return p, nil
}
