package client

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/wispbus/wisp/internal/batch"
)

func seedBatches(tb testing.TB) [][]byte {
	var out [][]byte
	for _, codec := range []batch.Codec{batch.None, batch.Gzip, batch.Snappy, batch.LZ4, batch.Zstd} {
		opts := batch.NoProducer
		opts.Codec = codec
		opts.BaseOffset = 10
		b, err := batch.Build(opts, []batch.Record{{Key: []byte("k"), Value: []byte("v"),
			Headers: []batch.RecordHeader{{Key: "h", Value: []byte("x")}}}, {Value: nil}})
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzDecodeRecords feeds pushed batch bytes (which come from the network)
// to the consumer's decoder.
func FuzzDecodeRecords(f *testing.F) {
	for _, b := range seedBatches(f) {
		f.Add(b, int64(0))
		f.Add(append(b, b[:30]...), int64(11))
	}
	f.Fuzz(func(t *testing.T, data []byte, from int64) {
		recs, next, err := decodeRecords("t", 0, data, from)
		if err != nil {
			return
		}
		for _, r := range recs {
			if r.Offset < from {
				t.Fatalf("record at %d below %d", r.Offset, from)
			}
			if r.Offset >= next {
				t.Fatalf("record at %d not below next %d", r.Offset, next)
			}
		}
	})
}

// FuzzGroupCodecs feeds member metadata and assignments (written by other
// group members, possibly other clients) to their decoders.
func FuzzGroupCodecs(f *testing.F) {
	f.Add(encodeMetadata([]string{"a", "b"}, map[string][]int32{"a": {1}}, 3))
	f.Add(encodeAssignment(map[string][]int32{"a": {0, 1}, "b": {2}}))
	f.Add([]byte{0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := decodeMetadata("m", "", data); err == nil {
			_ = assign(StickyAssignor, []memberSub{m}, map[string]int32{"a": 3, "b": 1})
		}
		_, _ = decodeAssignment(data)
	})
}

func TestWriteClientFuzzSeeds(t *testing.T) {
	if os.Getenv("WISP_WRITE_SEEDS") == "" {
		t.Skip("set WISP_WRITE_SEEDS=1 to regenerate testdata/fuzz")
	}
	for i, b := range seedBatches(t) {
		writeSeed(t, "FuzzDecodeRecords", fmt.Sprintf("batch-codec-%d", i), fmt.Sprintf("[]byte(%q)\nint64(0)\n", b))
	}
	b := seedBatches(t)[0]
	writeSeed(t, "FuzzDecodeRecords", "cut-second-batch", fmt.Sprintf("[]byte(%q)\nint64(11)\n", append(b, b[:30]...)))
	writeSeed(t, "FuzzGroupCodecs", "metadata-v2", fmt.Sprintf("[]byte(%q)\n",
		encodeMetadata([]string{"a", "b"}, map[string][]int32{"a": {1}}, 3)))
	writeSeed(t, "FuzzGroupCodecs", "assignment", fmt.Sprintf("[]byte(%q)\n",
		encodeAssignment(map[string][]int32{"a": {0, 1}})))
}

func writeSeed(t *testing.T, target, name, body string) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte("go test fuzz v1\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
}
