package chaos

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/wispbus/wisp/internal/batch"
)

// ReadReplica reads one partition's segment files in a stopped node's data
// directory: every batch (CRC-verified) and every record whose value is a
// RecordID. A missing directory is an empty replica.
func ReadReplica(dataDir, topic string, partition int32, node int) (Replica, error) {
	rep := Replica{Node: node}
	dir := filepath.Join(dataDir, "topics", topic, strconv.Itoa(int(partition)))
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return rep, err
	}
	sort.Strings(files) // names are zero-padded base offsets
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return rep, err
		}
		for len(data) > 0 {
			if len(data) >= batch.HeaderSize && bytes.Count(data[:batch.HeaderSize], []byte{0}) == batch.HeaderSize {
				break // zeroed space after the last batch
			}
			h, b, err := batch.Verify(data)
			if err != nil {
				return rep, fmt.Errorf("%s at byte %d: %w", f, len(data), err)
			}
			data = data[len(b):]
			rep.Batches = append(rep.Batches, Batch{Base: h.BaseOffset, Last: h.LastOffset(), Bytes: append([]byte(nil), b...)})
			rep.End = h.NextOffset()
			if h.IsControl() {
				continue
			}
			recs, err := batch.Records(b)
			if err != nil {
				return rep, fmt.Errorf("%s offset %d: %w", f, h.BaseOffset, err)
			}
			for _, r := range recs {
				if id, ok := ParseRecordID(r.Value); ok {
					rep.Records = append(rep.Records, LogRecord{Offset: r.Offset, ID: id})
				}
			}
		}
	}
	return rep, nil
}
