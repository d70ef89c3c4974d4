// Package batch reads and writes Kafka RecordBatch v2, the one batch format
// wisp uses everywhere: producers build it, the wire carries it, the disk
// stores it, followers copy it and fetchers get it back unchanged.
//
// Layout (big-endian), offsets in bytes:
//
//	 0 baseOffset           int64   rewritten by the broker (outside the CRC)
//	 8 batchLength          int32   bytes after this field
//	12 partitionLeaderEpoch int32   rewritten by the broker (outside the CRC)
//	16 magic                int8    = 2
//	17 crc                  uint32  CRC-32C (Castagnoli) of bytes 21..end
//	21 attributes           int16   bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control
//	23 lastOffsetDelta      int32
//	27 baseTimestamp        int64
//	35 maxTimestamp         int64
//	43 producerId           int64
//	51 producerEpoch        int16
//	53 baseSequence         int32
//	57 recordCount          int32
//	61 records...                   possibly compressed as one block
//
// The broker only parses the header, verifies the CRC and rewrites the two
// fields outside it; it never decompresses to append.
package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// HeaderSize is the size of the fixed RecordBatch v2 header.
const HeaderSize = 61

// MaxBatchSize bounds a single batch; larger length fields are treated as corrupt.
const MaxBatchSize = 64 << 20

// Attribute bits.
const (
	codecMask         = 0x07
	AttrLogAppendTime = 0x08
	AttrTransactional = 0x10
	AttrControl       = 0x20
)

// Errors returned by the decoders. They are sentinel values so that callers can
// tell a short read (wait for more bytes) from corruption (truncate or reject).
var (
	// ErrShort means the buffer ends before the batch does.
	ErrShort = errors.New("batch: buffer too short")
	// ErrMagic means the magic byte is not 2.
	ErrMagic = errors.New("batch: unsupported magic (want 2)")
	// ErrCRC means the stored CRC-32C does not match the content.
	ErrCRC = errors.New("batch: crc mismatch")
	// ErrCorrupt means a length or count field is impossible.
	ErrCorrupt = errors.New("batch: corrupt batch")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is the decoded fixed part of a batch.
type Header struct {
	BaseOffset      int64
	Length          int32 // batchLength: bytes after the length field
	LeaderEpoch     int32
	Magic           int8
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	NumRecords      int32
}

// Size is the total size of the batch in bytes.
func (h Header) Size() int { return int(h.Length) + 12 }

// LastOffset is the offset of the last record in the batch.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset after the batch.
func (h Header) NextOffset() int64 { return h.LastOffset() + 1 }

// Codec is the compression codec of the batch.
func (h Header) Codec() Codec { return Codec(h.Attributes & codecMask) }

// IsControl reports a transaction control batch.
func (h Header) IsControl() bool { return h.Attributes&AttrControl != 0 }

// IsTransactional reports a batch written inside a transaction.
func (h Header) IsTransactional() bool { return h.Attributes&AttrTransactional != 0 }

// Idempotent reports whether the batch carries a producer id.
func (h Header) Idempotent() bool { return h.ProducerID >= 0 }

// ParseHeader decodes the fixed header without checking the CRC. It returns
// ErrShort if b holds fewer than HeaderSize bytes, and checks that the length
// field is plausible.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, ErrShort
	}
	h := Header{
		BaseOffset:      int64(binary.BigEndian.Uint64(b[0:])),
		Length:          int32(binary.BigEndian.Uint32(b[8:])),
		LeaderEpoch:     int32(binary.BigEndian.Uint32(b[12:])),
		Magic:           int8(b[16]),
		CRC:             binary.BigEndian.Uint32(b[17:]),
		Attributes:      int16(binary.BigEndian.Uint16(b[21:])),
		LastOffsetDelta: int32(binary.BigEndian.Uint32(b[23:])),
		BaseTimestamp:   int64(binary.BigEndian.Uint64(b[27:])),
		MaxTimestamp:    int64(binary.BigEndian.Uint64(b[35:])),
		ProducerID:      int64(binary.BigEndian.Uint64(b[43:])),
		ProducerEpoch:   int16(binary.BigEndian.Uint16(b[51:])),
		BaseSequence:    int32(binary.BigEndian.Uint32(b[53:])),
		NumRecords:      int32(binary.BigEndian.Uint32(b[57:])),
	}
	if h.Magic != 2 {
		return h, ErrMagic
	}
	if h.Length < HeaderSize-12 || h.Length > MaxBatchSize {
		return h, fmt.Errorf("%w: length %d", ErrCorrupt, h.Length)
	}
	if h.NumRecords < 0 || h.LastOffsetDelta < 0 {
		return h, fmt.Errorf("%w: %d records, last offset delta %d", ErrCorrupt, h.NumRecords, h.LastOffsetDelta)
	}
	return h, nil
}

// Verify decodes the header of the batch at the start of b and checks its CRC.
// It returns the header and the batch bytes (a prefix of b).
func Verify(b []byte) (Header, []byte, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, nil, err
	}
	n := h.Size()
	if len(b) < n {
		return h, nil, ErrShort
	}
	if crc32.Checksum(b[21:n], castagnoli) != h.CRC {
		return h, nil, ErrCRC
	}
	return h, b[:n], nil
}

// Each verifies every batch in buf, which must hold whole batches only, and
// calls fn for each. It stops at the first error.
func Each(buf []byte, fn func(h Header, b []byte) error) error {
	for len(buf) > 0 {
		h, b, err := Verify(buf)
		if err != nil {
			return err
		}
		if err := fn(h, b); err != nil {
			return err
		}
		buf = buf[len(b):]
	}
	return nil
}

// SetBaseOffset rewrites the base offset of the batch in place (outside the CRC).
func SetBaseOffset(b []byte, off int64) { binary.BigEndian.PutUint64(b[0:], uint64(off)) }

// SetLeaderEpoch rewrites the partition leader epoch in place (outside the CRC).
func SetLeaderEpoch(b []byte, epoch int32) { binary.BigEndian.PutUint32(b[12:], uint32(epoch)) }

// SetMaxTimestampAndLogAppendTime marks a batch as LogAppendTime with the given
// broker time. This changes bytes under the CRC, so the CRC is recomputed;
// only used when a topic asks for message.timestamp.type=LogAppendTime.
func SetLogAppendTime(b []byte, ts int64) {
	attrs := binary.BigEndian.Uint16(b[21:]) | AttrLogAppendTime
	binary.BigEndian.PutUint16(b[21:], attrs)
	binary.BigEndian.PutUint64(b[35:], uint64(ts))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
}

// Checksum returns the CRC-32C the batch should carry.
func Checksum(b []byte) uint32 { return crc32.Checksum(b[21:], castagnoli) }
