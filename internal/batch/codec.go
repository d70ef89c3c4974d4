package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is a RecordBatch compression codec (attribute bits 0-2).
type Codec int8

// The codecs of the Kafka protocol.
const (
	None   Codec = 0
	Gzip   Codec = 1
	Snappy Codec = 2
	LZ4    Codec = 3
	Zstd   Codec = 4
)

// MaxDecompressed bounds the size of a decompressed batch body, so that a
// small malicious batch cannot expand into gigabytes.
const MaxDecompressed = 256 << 20

// ErrCodec is returned for an unknown codec or undecodable compressed data.
var ErrCodec = errors.New("batch: bad compression")

func (c Codec) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Snappy:
		return "snappy"
	case LZ4:
		return "lz4"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// ParseCodec maps a codec name ("none", "gzip", "snappy", "lz4", "zstd") to a Codec.
func ParseCodec(s string) (Codec, error) {
	switch s {
	case "", "none", "uncompressed":
		return None, nil
	case "gzip":
		return Gzip, nil
	case "snappy":
		return Snappy, nil
	case "lz4":
		return LZ4, nil
	case "zstd":
		return Zstd, nil
	}
	return None, fmt.Errorf("%w: unknown codec %q (want none, gzip, snappy, lz4, zstd)", ErrCodec, s)
}

var (
	zstdEncOnce sync.Once
	zstdEnc     *zstd.Encoder
	zstdDecOnce sync.Once
	zstdDec     *zstd.Decoder
)

func zenc() *zstd.Encoder {
	zstdEncOnce.Do(func() {
		zstdEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	})
	return zstdEnc
}

func zdec() *zstd.Decoder {
	zstdDecOnce.Do(func() {
		zstdDec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxDecompressed))
	})
	return zstdDec
}

// Compress compresses a record body with codec c.
func Compress(c Codec, body []byte) ([]byte, error) {
	switch c {
	case None:
		return body, nil
	case Gzip:
		var buf bytes.Buffer
		w, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		if _, err := w.Write(body); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case Snappy:
		return snappy.Encode(nil, body), nil
	case LZ4:
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(body); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case Zstd:
		return zenc().EncodeAll(body, nil), nil
	}
	return nil, fmt.Errorf("%w: codec %d", ErrCodec, c)
}

// xerialMagic starts snappy data framed the way the Java xerial library (and
// kafka-python) writes it: magic, version, compat version, then blocks of
// big-endian int32 length + raw snappy.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// Decompress undoes Compress, bounded by MaxDecompressed.
func Decompress(c Codec, data []byte) ([]byte, error) {
	var out []byte
	var err error
	switch c {
	case None:
		return data, nil
	case Gzip:
		var r *gzip.Reader
		if r, err = gzip.NewReader(bytes.NewReader(data)); err == nil {
			out, err = readAllLimited(r)
		}
	case Snappy:
		out, err = decodeSnappy(data)
	case LZ4:
		out, err = readAllLimited(lz4.NewReader(bytes.NewReader(data)))
	case Zstd:
		out, err = zdec().DecodeAll(data, nil)
	default:
		return nil, fmt.Errorf("%w: codec %d", ErrCodec, c)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCodec, c, err)
	}
	return out, nil
}

func readAllLimited(r io.Reader) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, MaxDecompressed+1))
	if err != nil {
		return nil, err
	}
	if len(out) > MaxDecompressed {
		return nil, errors.New("decompressed size over limit")
	}
	return out, nil
}

func decodeSnappy(data []byte) ([]byte, error) {
	if !bytes.HasPrefix(data, xerialMagic) {
		return decodeSnappyBlock(nil, data)
	}
	if len(data) < 16 {
		return nil, errors.New("short xerial header")
	}
	data = data[16:]
	var out []byte
	for len(data) > 0 {
		if len(data) < 4 {
			return nil, errors.New("short xerial block length")
		}
		n := int(binary.BigEndian.Uint32(data))
		data = data[4:]
		if n < 0 || n > len(data) {
			return nil, errors.New("xerial block past end")
		}
		var err error
		if out, err = decodeSnappyBlock(out, data[:n]); err != nil {
			return nil, err
		}
		data = data[n:]
	}
	return out, nil
}

func decodeSnappyBlock(dst, block []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if n > MaxDecompressed || len(dst)+n > MaxDecompressed {
		return nil, errors.New("decompressed size over limit")
	}
	out, err := snappy.Decode(nil, block)
	if err != nil {
		return nil, err
	}
	return append(dst, out...), nil
}
