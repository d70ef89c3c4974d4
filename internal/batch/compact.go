package batch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Rewrite re-encodes recs, a subset of the records of the batch whose header
// is h, in their original order, for log compaction. Everything but the
// dropped records is kept: base offset, last offset delta (so the batch's
// offset range survives even if its last record was removed, as Kafka
// does), attributes (codec, timestamp type, transactional, control), base
// and max timestamps, producer id, epoch and base sequence, and the leader
// epoch. Each record keeps its own offset delta (r.Offset - h.BaseOffset)
// and timestamp. recs may be empty: the result is then an empty batch that
// only carries the producer state and offset range.
func Rewrite(h Header, recs []Record) ([]byte, error) {
	body := make([]byte, 0, estimate(recs))
	for i := range recs {
		d := recs[i].Offset - h.BaseOffset
		if d < 0 || d > int64(h.LastOffsetDelta) || (i > 0 && recs[i].Offset <= recs[i-1].Offset) {
			return nil, fmt.Errorf("%w: record offset %d outside batch %d+%d or out of order",
				ErrCorrupt, recs[i].Offset, h.BaseOffset, h.LastOffsetDelta)
		}
		// now = 0 keeps a zero timestamp as it is instead of "now".
		body = AppendRecord(body, &recs[i], int32(d), h.BaseTimestamp, 0)
	}
	if c := h.Codec(); c != None {
		var err error
		if body, err = Compress(c, body); err != nil {
			return nil, err
		}
	}
	b := make([]byte, HeaderSize, HeaderSize+len(body))
	b = append(b, body...)
	binary.BigEndian.PutUint64(b[0:], uint64(h.BaseOffset))
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[12:], uint32(h.LeaderEpoch))
	b[16] = 2
	binary.BigEndian.PutUint16(b[21:], uint16(h.Attributes))
	binary.BigEndian.PutUint32(b[23:], uint32(h.LastOffsetDelta))
	binary.BigEndian.PutUint64(b[27:], uint64(h.BaseTimestamp))
	binary.BigEndian.PutUint64(b[35:], uint64(h.MaxTimestamp))
	binary.BigEndian.PutUint64(b[43:], uint64(h.ProducerID))
	binary.BigEndian.PutUint16(b[51:], uint16(h.ProducerEpoch))
	binary.BigEndian.PutUint32(b[53:], uint32(h.BaseSequence))
	binary.BigEndian.PutUint32(b[57:], uint32(len(recs)))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b, nil
}
