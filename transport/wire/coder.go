package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Coder encodes or decodes a message, one field at a time. A message's
// Codec method calls it for each field in order; the same method serves
// both directions. Decoding errors are sticky: after the first, every call
// is a no-op and Err reports it.
type Coder = coder

type coder struct {
	enc bool
	buf []byte // encoding: appended to; decoding: what is left
	err error
}

var errShort = errors.New("message ends early")

// take returns the next n bytes when decoding.
func (c *coder) take(n int) []byte {
	if c.err != nil {
		return nil
	}
	if n < 0 || n > len(c.buf) {
		c.err = errShort
		return nil
	}
	b := c.buf[:n:n]
	c.buf = c.buf[n:]
	return b
}

func (c *coder) i8(v *int8) {
	if c.enc {
		c.buf = append(c.buf, byte(*v))
	} else if b := c.take(1); b != nil {
		*v = int8(b[0])
	}
}

func (c *coder) boolean(v *bool) {
	if c.enc {
		x := byte(0)
		if *v {
			x = 1
		}
		c.buf = append(c.buf, x)
	} else if b := c.take(1); b != nil {
		if b[0] > 1 {
			c.err = fmt.Errorf("bool byte %d", b[0])
			return
		}
		*v = b[0] == 1
	}
}

func (c *coder) i16(v *int16) {
	if c.enc {
		c.buf = binary.BigEndian.AppendUint16(c.buf, uint16(*v))
	} else if b := c.take(2); b != nil {
		*v = int16(binary.BigEndian.Uint16(b))
	}
}

func (c *coder) i32(v *int32) {
	if c.enc {
		c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(*v))
	} else if b := c.take(4); b != nil {
		*v = int32(binary.BigEndian.Uint32(b))
	}
}

func (c *coder) u32(v *uint32) {
	if c.enc {
		c.buf = binary.BigEndian.AppendUint32(c.buf, *v)
	} else if b := c.take(4); b != nil {
		*v = binary.BigEndian.Uint32(b)
	}
}

func (c *coder) i64(v *int64) {
	if c.enc {
		c.buf = binary.BigEndian.AppendUint64(c.buf, uint64(*v))
	} else if b := c.take(8); b != nil {
		*v = int64(binary.BigEndian.Uint64(b))
	}
}

// str is u16 length + UTF-8 bytes (not checked; names are validated by
// the broker).
func (c *coder) str(v *string) {
	if c.enc {
		s := *v
		if len(s) > math.MaxUint16 {
			s = s[:math.MaxUint16] // encoders keep strings short; never silently in practice
		}
		c.buf = binary.BigEndian.AppendUint16(c.buf, uint16(len(s)))
		c.buf = append(c.buf, s...)
		return
	}
	b := c.take(2)
	if b == nil {
		return
	}
	if s := c.take(int(binary.BigEndian.Uint16(b))); c.err == nil {
		*v = string(s)
	}
}

// bytes is i32 length (-1 = null) + bytes. Decoded bytes alias the frame.
func (c *coder) bytes(v *[]byte) {
	if c.enc {
		if *v == nil {
			c.buf = binary.BigEndian.AppendUint32(c.buf, math.MaxUint32)
			return
		}
		c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(len(*v)))
		c.buf = append(c.buf, *v...)
		return
	}
	b := c.take(4)
	if b == nil {
		return
	}
	n := int32(binary.BigEndian.Uint32(b))
	if n == -1 {
		*v = nil
		return
	}
	if n < -1 {
		c.err = fmt.Errorf("bytes length %d", n)
		return
	}
	if p := c.take(int(n)); c.err == nil {
		*v = p
	}
}

func (c *coder) id16(v *[16]byte) {
	if c.enc {
		c.buf = append(c.buf, v[:]...)
	} else if b := c.take(16); b != nil {
		copy(v[:], b)
	}
}

// count encodes or decodes an array length (u32). When decoding it checks
// that n elements of at least minSize bytes each fit in what is left.
func (c *coder) count(n int, minSize int) int {
	if c.enc {
		c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(n))
		return n
	}
	b := c.take(4)
	if b == nil {
		return 0
	}
	m := binary.BigEndian.Uint32(b)
	if minSize < 1 {
		minSize = 1
	}
	if uint64(m)*uint64(minSize) > uint64(len(c.buf)) {
		c.err = fmt.Errorf("array of %d elements in %d bytes", m, len(c.buf))
		return 0
	}
	return int(m)
}

// array encodes or decodes a u32 count then each element with f. minSize
// is the smallest encoding of one element, for the allocation check.
func array[T any](c *coder, s *[]T, minSize int, f func(*T, *coder)) {
	n := c.count(len(*s), minSize)
	if c.err != nil {
		return
	}
	if !c.enc {
		if n == 0 {
			*s = nil
			return
		}
		*s = make([]T, n)
	}
	for i := 0; i < n && c.err == nil; i++ {
		f(&(*s)[i], c)
	}
}

func (c *coder) strs(v *[]string) { array(c, v, 2, func(s *string, c *coder) { c.str(s) }) }

func (c *coder) i32s(v *[]int32) { array(c, v, 4, func(x *int32, c *coder) { c.i32(x) }) }

// strMap is a u32 count of (key string, value string), keys sorted when
// encoding so that equal maps encode equally.
func (c *coder) strMap(m *map[string]string) {
	if c.enc {
		keys := make([]string, 0, len(*m))
		for k := range *m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		c.count(len(keys), 4)
		for _, k := range keys {
			v := (*m)[k]
			c.str(&k)
			c.str(&v)
		}
		return
	}
	n := c.count(0, 4)
	if c.err != nil || n == 0 {
		*m = nil
		return
	}
	out := make(map[string]string, n)
	for i := 0; i < n && c.err == nil; i++ {
		var k, v string
		c.str(&k)
		c.str(&v)
		out[k] = v
	}
	*m = out
}
