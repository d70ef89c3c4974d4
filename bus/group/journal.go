package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// The offsets journal is an append-only file:
//
//	magic   8 bytes  "wispofs\x01"
//	frame*
//
// and each frame is
//
//	length  uint32 big-endian  bytes of payload
//	crc     uint32 big-endian  CRC-32C (Castagnoli) of payload
//	payload uvarint count, then count records
//
// A frame is the unit of atomicity: one CommitOffsets call is one frame, so a
// torn write loses a whole call or nothing of it. Each record starts with its
// kind byte; strings are a uvarint length and the bytes; integers are
// (zig-zag) varints. Replay applies the records in order; the last frame may
// be torn by a crash and is cut off at Open.
const journalMagic = "wispofs\x01"

const (
	frameHeaderSize = 8
	// maxFrameSize bounds a frame's payload; a larger length is corruption.
	maxFrameSize = 64 << 20
)

// recKind tags a journal record.
type recKind uint8

const (
	// recCommit sets the committed offset of group/topic/partition.
	recCommit recKind = 1
	// recDelete forgets the offset of group/topic/partition.
	recDelete recKind = 2
	// recExpire forgets the offsets of group committed at or before time.
	recExpire recKind = 3
	// recDropTopic forgets topic in every group.
	recDropTopic recKind = 4
	// recDeleteGroup forgets everything about group.
	recDeleteGroup recKind = 5
	// recGroupType remembers the protocol type of group (ListGroups shows it
	// after a restart).
	recGroupType recKind = 6
)

// record is one journal entry. Which fields mean something depends on kind;
// time is the commit time or the expiry cutoff in Unix milliseconds.
type record struct {
	kind      recKind
	group     string
	topic     string
	partition int32
	offset    int64
	epoch     int32
	metadata  string
	time      int64
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Decoder errors. errTorn means the bytes end inside a frame; errCorrupt
// means a frame is complete but wrong. Replay treats both as the end of the
// good journal.
var (
	errTorn    = errors.New("group: journal: torn frame")
	errCorrupt = errors.New("group: journal: corrupt frame")
	errMagic   = errors.New("group: journal: not an offsets journal (bad magic)")
)

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendRecord(b []byte, r *record) []byte {
	b = append(b, byte(r.kind))
	switch r.kind {
	case recCommit:
		b = appendString(b, r.group)
		b = appendString(b, r.topic)
		b = binary.AppendVarint(b, int64(r.partition))
		b = binary.AppendVarint(b, r.offset)
		b = binary.AppendVarint(b, int64(r.epoch))
		b = appendString(b, r.metadata)
		b = binary.AppendVarint(b, r.time)
	case recDelete:
		b = appendString(b, r.group)
		b = appendString(b, r.topic)
		b = binary.AppendVarint(b, int64(r.partition))
	case recExpire:
		b = appendString(b, r.group)
		b = binary.AppendVarint(b, r.time)
	case recDropTopic:
		b = appendString(b, r.topic)
	case recDeleteGroup:
		b = appendString(b, r.group)
	case recGroupType:
		b = appendString(b, r.group)
		b = appendString(b, r.metadata)
	default:
		panic(fmt.Sprintf("group: journal: unknown record kind %d", r.kind))
	}
	return b
}

// appendFrame appends one frame holding recs to b.
func appendFrame(b []byte, recs []record) []byte {
	start := len(b)
	b = append(b, make([]byte, frameHeaderSize)...)
	b = binary.AppendUvarint(b, uint64(len(recs)))
	for i := range recs {
		b = appendRecord(b, &recs[i])
	}
	payload := b[start+frameHeaderSize:]
	binary.BigEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(payload, crcTable))
	return b
}

func uvarintLen(x uint64) int64 {
	n := int64(1)
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func varintLen(x int64) int64 {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return uvarintLen(ux)
}

func stringLen(s string) int64 { return uvarintLen(uint64(len(s))) + int64(len(s)) }

// commitSize is the encoded size of a recCommit record, used to keep an
// estimate of the journal's live (compacted) size without encoding.
func commitSize(group string, tp TopicPartition, e offsetEntry) int64 {
	return 1 + stringLen(group) + stringLen(tp.Topic) + varintLen(int64(tp.Partition)) +
		varintLen(e.Offset) + varintLen(int64(e.LeaderEpoch)) + stringLen(e.Metadata) + varintLen(e.commitMs)
}

// payloadReader decodes a frame payload.
type payloadReader struct {
	b   []byte
	err error
}

func (p *payloadReader) fail() {
	if p.err == nil {
		p.err = errCorrupt
	}
	p.b = nil
}

func (p *payloadReader) uvarint() uint64 {
	v, n := binary.Uvarint(p.b)
	if n <= 0 {
		p.fail()
		return 0
	}
	p.b = p.b[n:]
	return v
}

func (p *payloadReader) varint() int64 {
	v, n := binary.Varint(p.b)
	if n <= 0 {
		p.fail()
		return 0
	}
	p.b = p.b[n:]
	return v
}

func (p *payloadReader) int32() int32 {
	v := p.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		p.fail()
		return 0
	}
	return int32(v)
}

func (p *payloadReader) string() string {
	n := p.uvarint()
	if n > uint64(len(p.b)) {
		p.fail()
		return ""
	}
	s := string(p.b[:n])
	p.b = p.b[n:]
	return s
}

func (p *payloadReader) record() record {
	if len(p.b) == 0 {
		p.fail()
		return record{}
	}
	r := record{kind: recKind(p.b[0])}
	p.b = p.b[1:]
	switch r.kind {
	case recCommit:
		r.group = p.string()
		r.topic = p.string()
		r.partition = p.int32()
		r.offset = p.varint()
		r.epoch = p.int32()
		r.metadata = p.string()
		r.time = p.varint()
	case recDelete:
		r.group = p.string()
		r.topic = p.string()
		r.partition = p.int32()
	case recExpire:
		r.group = p.string()
		r.time = p.varint()
	case recDropTopic:
		r.topic = p.string()
	case recDeleteGroup:
		r.group = p.string()
	case recGroupType:
		r.group = p.string()
		r.metadata = p.string()
	default:
		p.fail()
	}
	return r
}

// decodePayload decodes the records of one frame payload.
func decodePayload(payload []byte) ([]record, error) {
	p := payloadReader{b: payload}
	n := p.uvarint()
	// Every record takes at least two bytes, which bounds a hostile count.
	if p.err != nil || n > uint64(len(p.b)) {
		return nil, errCorrupt
	}
	recs := make([]record, 0, n)
	for i := uint64(0); i < n && p.err == nil; i++ {
		recs = append(recs, p.record())
	}
	if p.err != nil {
		return nil, p.err
	}
	if len(p.b) != 0 {
		return nil, errCorrupt
	}
	return recs, nil
}

// decodeFrame decodes the frame at the start of b and returns its records
// and size. It returns errTorn when b ends inside the frame and errCorrupt
// when the frame is complete but fails its checks.
func decodeFrame(b []byte) ([]record, int, error) {
	if len(b) < frameHeaderSize {
		return nil, 0, errTorn
	}
	n := binary.BigEndian.Uint32(b)
	if n > maxFrameSize {
		return nil, 0, errCorrupt
	}
	end := frameHeaderSize + int(n)
	if len(b) < end {
		return nil, 0, errTorn
	}
	payload := b[frameHeaderSize:end]
	if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(b[4:]) {
		return nil, 0, errCorrupt
	}
	recs, err := decodePayload(payload)
	if err != nil {
		return nil, 0, err
	}
	return recs, end, nil
}

// decodeJournal decodes a whole journal file. It returns the frames that
// decode, the length of the good prefix, and why decoding stopped before the
// end (nil when all of data is good). A file shorter than the magic that is
// a prefix of it is an empty journal torn while being created. errMagic means
// the file is something else and must not be truncated.
func decodeJournal(data []byte) (frames [][]record, good int, err error) {
	if len(data) < len(journalMagic) {
		if string(data) == journalMagic[:len(data)] {
			if len(data) == 0 {
				return nil, 0, nil
			}
			return nil, 0, errTorn
		}
		return nil, 0, errMagic
	}
	if string(data[:len(journalMagic)]) != journalMagic {
		return nil, 0, errMagic
	}
	good = len(journalMagic)
	for good < len(data) {
		recs, n, err := decodeFrame(data[good:])
		if err != nil {
			return frames, good, err
		}
		frames = append(frames, recs)
		good += n
	}
	return frames, good, nil
}
