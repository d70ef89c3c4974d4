package batch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

// RecordHeader is one key/value header of a record.
type RecordHeader struct {
	Key   string
	Value []byte
}

// Record is one decoded record. Key and Value are nil when absent (null);
// an empty non-nil slice is an empty value. Timestamp is in milliseconds.
type Record struct {
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte
	Headers   []RecordHeader
}

// Options control how Build encodes a batch.
type Options struct {
	Codec         Codec
	BaseOffset    int64
	ProducerID    int64 // -1 when not idempotent
	ProducerEpoch int16 // -1 when not idempotent
	BaseSequence  int32 // -1 when not idempotent
	Transactional bool
	Control       bool
}

// NoProducer is the Options for a batch without a producer id.
var NoProducer = Options{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}

// Build encodes recs into one RecordBatch v2. Record offsets are taken as
// deltas from their position (Offset fields are ignored); a zero Timestamp
// means now.
func Build(opts Options, recs []Record) ([]byte, error) {
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: empty batch", ErrCorrupt)
	}
	now := time.Now().UnixMilli()
	base := recs[0].Timestamp
	if base == 0 {
		base = now
	}
	maxTS := int64(-1)
	for i := range recs {
		ts := recs[i].Timestamp
		if ts == 0 {
			ts = now
		}
		if ts > maxTS {
			maxTS = ts
		}
		if ts < base {
			base = ts
		}
	}
	body := make([]byte, 0, estimate(recs))
	for i := range recs {
		body = AppendRecord(body, &recs[i], int32(i), base, now)
	}
	if opts.Codec != None {
		c, err := Compress(opts.Codec, body)
		if err != nil {
			return nil, err
		}
		body = c
	}
	b := make([]byte, HeaderSize, HeaderSize+len(body))
	b = append(b, body...)
	binary.BigEndian.PutUint64(b[0:], uint64(opts.BaseOffset))
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[12:], 0xffffffff) // leader epoch -1 until the broker sets it
	b[16] = 2
	attrs := uint16(opts.Codec) & codecMask
	if opts.Transactional {
		attrs |= AttrTransactional
	}
	if opts.Control {
		attrs |= AttrControl
	}
	binary.BigEndian.PutUint16(b[21:], attrs)
	binary.BigEndian.PutUint32(b[23:], uint32(len(recs)-1))
	binary.BigEndian.PutUint64(b[27:], uint64(base))
	binary.BigEndian.PutUint64(b[35:], uint64(maxTS))
	binary.BigEndian.PutUint64(b[43:], uint64(opts.ProducerID))
	binary.BigEndian.PutUint16(b[51:], uint16(opts.ProducerEpoch))
	binary.BigEndian.PutUint32(b[53:], uint32(opts.BaseSequence))
	binary.BigEndian.PutUint32(b[57:], uint32(len(recs)))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b, nil
}

func estimate(recs []Record) int {
	n := 0
	for i := range recs {
		n += 24 + len(recs[i].Key) + len(recs[i].Value)
		for _, h := range recs[i].Headers {
			n += 10 + len(h.Key) + len(h.Value)
		}
	}
	return n
}

// AppendRecord appends the v2 encoding of r, with the given offset delta and
// the batch's base timestamp, to dst.
func AppendRecord(dst []byte, r *Record, offsetDelta int32, baseTS, now int64) []byte {
	ts := r.Timestamp
	if ts == 0 {
		ts = now
	}
	var tmp [binary.MaxVarintLen64]byte
	// Body first into a scratch tail, then prefix its length.
	bodyLen := 1 + varintLen(ts-baseTS) + varintLen(int64(offsetDelta)) +
		bytesLen(r.Key) + bytesLen(r.Value) + varintLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		bodyLen += varintLen(int64(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	dst = append(dst, tmp[:binary.PutVarint(tmp[:], int64(bodyLen))]...)
	dst = append(dst, 0) // record attributes, unused
	dst = binary.AppendVarint(dst, ts-baseTS)
	dst = binary.AppendVarint(dst, int64(offsetDelta))
	dst = appendBytes(dst, r.Key)
	dst = appendBytes(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for _, h := range r.Headers {
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendBytes(dst, h.Value)
	}
	return dst
}

func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

func bytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// Records decodes every record of one verified batch, decompressing if needed.
// The returned slices may alias b (uncompressed) or a fresh buffer.
func Records(b []byte) ([]Record, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if len(b) < h.Size() {
		return nil, ErrShort
	}
	body := b[HeaderSize:h.Size()]
	if h.Codec() != None {
		body, err = Decompress(h.Codec(), body)
		if err != nil {
			return nil, err
		}
	}
	if int(h.NumRecords) > len(body) { // every record takes at least 1 byte... at least 7 really
		return nil, fmt.Errorf("%w: %d records in %d bytes", ErrCorrupt, h.NumRecords, len(body))
	}
	out := make([]Record, 0, h.NumRecords)
	for i := int32(0); i < h.NumRecords; i++ {
		var r Record
		body, err = readRecord(body, &r, h)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func readRecord(b []byte, r *Record, h Header) ([]byte, error) {
	length, n := binary.Varint(b)
	if n <= 0 || length < 0 || int64(len(b)-n) < length {
		return nil, fmt.Errorf("%w: record length", ErrCorrupt)
	}
	rest := b[n+int(length):]
	b = b[n : n+int(length)]
	if len(b) < 1 {
		return nil, fmt.Errorf("%w: record attributes", ErrCorrupt)
	}
	b = b[1:]
	tsDelta, n := binary.Varint(b)
	if n <= 0 {
		return nil, fmt.Errorf("%w: timestamp delta", ErrCorrupt)
	}
	b = b[n:]
	offDelta, n := binary.Varint(b)
	if n <= 0 {
		return nil, fmt.Errorf("%w: offset delta", ErrCorrupt)
	}
	b = b[n:]
	var err error
	if r.Key, b, err = readBytes(b); err != nil {
		return nil, err
	}
	if r.Value, b, err = readBytes(b); err != nil {
		return nil, err
	}
	nh, n := binary.Varint(b)
	if n <= 0 || nh < 0 || nh > int64(len(b)) {
		return nil, fmt.Errorf("%w: header count", ErrCorrupt)
	}
	b = b[n:]
	if nh > 0 {
		r.Headers = make([]RecordHeader, 0, nh)
	}
	for j := int64(0); j < nh; j++ {
		var k, v []byte
		if k, b, err = readBytes(b); err != nil {
			return nil, err
		}
		if v, b, err = readBytes(b); err != nil {
			return nil, err
		}
		r.Headers = append(r.Headers, RecordHeader{Key: string(k), Value: v})
	}
	r.Offset = h.BaseOffset + offDelta
	if h.Attributes&AttrLogAppendTime != 0 {
		r.Timestamp = h.MaxTimestamp
	} else {
		r.Timestamp = h.BaseTimestamp + tsDelta
	}
	return rest, nil
}

func readBytes(b []byte) (v, rest []byte, err error) {
	l, n := binary.Varint(b)
	if n <= 0 || l < -1 || l > int64(len(b)-n) {
		return nil, nil, fmt.Errorf("%w: byte field length", ErrCorrupt)
	}
	b = b[n:]
	if l < 0 {
		return nil, b, nil
	}
	return b[:l:l], b[l:], nil
}
