package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/klauspost/compress/snappy"
)

var allCodecs = []Codec{None, Gzip, Snappy, LZ4, Zstd}

// recordSets are the shapes every codec must carry unchanged.
func recordSets() map[string][]Record {
	big := bytes.Repeat([]byte("wisp "), 4000)
	return map[string][]Record{
		"one":          {{Timestamp: 1_700_000_000_000, Key: []byte("k"), Value: []byte("v")}},
		"null key":     {{Timestamp: 5, Value: []byte("v")}},
		"null value":   {{Timestamp: 5, Key: []byte("k")}},
		"null both":    {{Timestamp: 5}},
		"empty value":  {{Timestamp: 5, Key: []byte{}, Value: []byte{}}},
		"headers":      {{Timestamp: 5, Key: []byte("k"), Value: []byte("v"), Headers: []RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "", Value: nil}, {Key: "c", Value: []byte{}}}}},
		"timestamps":   {{Timestamp: 1000, Value: []byte("a")}, {Timestamp: 900, Value: []byte("b")}, {Timestamp: 5000, Value: []byte("c")}},
		"many":         manyRecords(500),
		"large value":  {{Timestamp: 7, Key: []byte("big"), Value: big}},
		"binary bytes": {{Timestamp: 7, Key: []byte{0, 0xff, 0x80}, Value: []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}}},
	}
}

func manyRecords(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Timestamp: int64(1000 + i), Key: []byte(fmt.Sprint("key-", i%17)), Value: []byte(fmt.Sprint("value-", i))}
	}
	return recs
}

func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func checkRecords(t *testing.T, got, want []Record, base int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Offset != base+int64(i) || g.Timestamp != w.Timestamp || !sameBytes(g.Key, w.Key) || !sameBytes(g.Value, w.Value) {
			t.Fatalf("record %d: got %+v, want %+v", i, g, w)
		}
		if len(g.Headers) != len(w.Headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(g.Headers), len(w.Headers))
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || !sameBytes(g.Headers[j].Value, w.Headers[j].Value) {
				t.Fatalf("record %d header %d: got %+v, want %+v", i, j, g.Headers[j], w.Headers[j])
			}
		}
	}
}

func TestBuildRecordsRoundTrip(t *testing.T) {
	for _, c := range allCodecs {
		for name, recs := range recordSets() {
			t.Run(c.String()+"/"+name, func(t *testing.T) {
				opts := Options{Codec: c, BaseOffset: 42, ProducerID: 9, ProducerEpoch: 2, BaseSequence: 100}
				b, err := Build(opts, recs)
				if err != nil {
					t.Fatal(err)
				}
				h, vb, err := Verify(b)
				if err != nil || len(vb) != len(b) {
					t.Fatalf("Verify: %v", err)
				}
				if h.Codec() != c || h.BaseOffset != 42 || h.NumRecords != int32(len(recs)) ||
					h.LastOffsetDelta != int32(len(recs)-1) || h.ProducerID != 9 || h.ProducerEpoch != 2 ||
					h.BaseSequence != 100 || h.LeaderEpoch != -1 {
					t.Fatalf("header %+v", h)
				}
				minTS, maxTS := recs[0].Timestamp, recs[0].Timestamp
				for _, r := range recs {
					minTS, maxTS = min(minTS, r.Timestamp), max(maxTS, r.Timestamp)
				}
				if h.BaseTimestamp != minTS || h.MaxTimestamp != maxTS {
					t.Fatalf("timestamps %d..%d, want %d..%d", h.BaseTimestamp, h.MaxTimestamp, minTS, maxTS)
				}
				got, err := Records(b)
				if err != nil {
					t.Fatal(err)
				}
				checkRecords(t, got, recs, 42)

				// Broker rewrites outside the CRC keep it valid.
				SetBaseOffset(b, 1000)
				SetLeaderEpoch(b, 7)
				if h, _, err := Verify(b); err != nil || h.BaseOffset != 1000 || h.LeaderEpoch != 7 {
					t.Fatalf("after rewrite: %+v %v", h, err)
				}
				// LogAppendTime: every record reads the batch max timestamp.
				SetLogAppendTime(b, 99)
				if _, _, err := Verify(b); err != nil {
					t.Fatal(err)
				}
				got, err = Records(b)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range got {
					if r.Timestamp != 99 {
						t.Fatalf("log append time: %d", r.Timestamp)
					}
				}
			})
		}
	}
}

func TestBuildEmpty(t *testing.T) {
	if _, err := Build(NoProducer, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("empty batch: %v", err)
	}
}

// xerialFrame frames data the way the Java xerial library does: magic,
// version 1, compatible version 1, then blocks of big-endian int32 length +
// raw snappy block.
func xerialFrame(data []byte, blockSize int) []byte {
	out := append([]byte{}, xerialMagic...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(data) > 0 {
		n := min(blockSize, len(data))
		blk := snappy.Encode(nil, data[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(blk)))
		out = append(out, blk...)
		data = data[n:]
	}
	return out
}

func TestXerialSnappy(t *testing.T) {
	recs := manyRecords(300)
	plain, err := Build(NoProducer, recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, blockSize := range []int{1 << 20, 1000, 7} {
		t.Run(fmt.Sprint(blockSize), func(t *testing.T) {
			body := xerialFrame(plain[HeaderSize:], blockSize)
			b := append(append([]byte{}, plain[:HeaderSize]...), body...)
			binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
			binary.BigEndian.PutUint16(b[21:], uint16(Snappy))
			binary.BigEndian.PutUint32(b[17:], Checksum(b))
			if _, _, err := Verify(b); err != nil {
				t.Fatal(err)
			}
			got, err := Records(b)
			if err != nil {
				t.Fatal(err)
			}
			checkRecords(t, got, recs, 0)
		})
	}
	bad := map[string][]byte{
		"short header":       xerialMagic,
		"short block length": append(xerialFrame(nil, 1), 0, 0),
		"block past end":     append(xerialFrame(nil, 1), 0, 0, 0, 9, 1),
		"bad block":          append(xerialFrame(nil, 1), 0, 0, 0, 2, 0xff, 0xff),
	}
	for name, data := range bad {
		if _, err := Decompress(Snappy, data); !errors.Is(err, ErrCodec) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestVerifyRejectsFlips(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			b, err := Build(Options{Codec: c, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, manyRecords(20))
			if err != nil {
				t.Fatal(err)
			}
			for i := 8; i < len(b); i++ {
				if i >= 12 && i < 16 { // leader epoch: outside the CRC by design
					continue
				}
				for bit := 0; bit < 8; bit++ {
					d := append([]byte{}, b...)
					d[i] ^= 1 << bit
					if _, _, err := Verify(d); err == nil {
						t.Fatalf("flip of byte %d bit %d accepted", i, bit)
					}
				}
			}
			if _, _, err := Verify(b[:len(b)-1]); !errors.Is(err, ErrShort) {
				t.Fatalf("truncated: %v", err)
			}
			if _, _, err := Verify(b[:HeaderSize-1]); !errors.Is(err, ErrShort) {
				t.Fatalf("short header: %v", err)
			}
		})
	}
}

func TestEach(t *testing.T) {
	a, _ := Build(NoProducer, manyRecords(3))
	b, _ := Build(Options{Codec: Zstd, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, manyRecords(4))
	buf := append(append([]byte{}, a...), b...)
	n := 0
	if err := Each(buf, func(h Header, _ []byte) error { n += int(h.NumRecords); return nil }); err != nil || n != 7 {
		t.Fatalf("Each: %d %v", n, err)
	}
	if err := Each(append(buf, 1), func(Header, []byte) error { return nil }); !errors.Is(err, ErrShort) {
		t.Fatalf("trailing byte: %v", err)
	}
}

func TestRewrite(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			recs := manyRecords(10)
			b, err := Build(Options{Codec: c, BaseOffset: 500, ProducerID: 4, ProducerEpoch: 1, BaseSequence: 30}, recs)
			if err != nil {
				t.Fatal(err)
			}
			SetLeaderEpoch(b, 6)
			h, _, _ := Verify(b)
			all, _ := Records(b)
			keep := []Record{all[1], all[4], all[8]} // the last record (9) goes
			nb, err := Rewrite(h, keep)
			if err != nil {
				t.Fatal(err)
			}
			nh, _, err := Verify(nb)
			if err != nil {
				t.Fatal(err)
			}
			if nh.BaseOffset != 500 || nh.LastOffset() != 509 || nh.NumRecords != 3 || nh.Codec() != c ||
				nh.ProducerID != 4 || nh.ProducerEpoch != 1 || nh.BaseSequence != 30 || nh.LeaderEpoch != 6 ||
				nh.BaseTimestamp != h.BaseTimestamp || nh.MaxTimestamp != h.MaxTimestamp {
				t.Fatalf("header %+v from %+v", nh, h)
			}
			got, err := Records(nb)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range got {
				w := keep[i]
				if r.Offset != w.Offset || r.Timestamp != w.Timestamp || !sameBytes(r.Key, w.Key) || !sameBytes(r.Value, w.Value) {
					t.Fatalf("record %d: %+v, want %+v", i, r, w)
				}
			}
			empty, err := Rewrite(h, nil)
			if err != nil {
				t.Fatal(err)
			}
			if eh, _, err := Verify(empty); err != nil || eh.NumRecords != 0 || eh.LastOffset() != 509 {
				t.Fatalf("empty rewrite: %+v %v", eh, err)
			}
			if r, err := Records(empty); err != nil || len(r) != 0 {
				t.Fatalf("empty records: %v %v", r, err)
			}
			if _, err := Rewrite(h, []Record{all[4], all[1]}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("out of order: %v", err)
			}
		})
	}
}

func TestParseCodec(t *testing.T) {
	for _, c := range allCodecs {
		if got, err := ParseCodec(c.String()); err != nil || got != c {
			t.Errorf("%s: %v %v", c, got, err)
		}
	}
	if _, err := ParseCodec("brotli"); !errors.Is(err, ErrCodec) {
		t.Error(err)
	}
}

// seedBatches are real batches, one per codec and a multi-batch buffer, for
// the fuzzers.
func seedBatches(tb testing.TB) [][]byte {
	var out [][]byte
	var all []byte
	for _, c := range allCodecs {
		recs := []Record{{Timestamp: 5, Key: []byte("k"), Value: []byte("v"), Headers: []RecordHeader{{Key: "h", Value: []byte("x")}}}, {Timestamp: 6}}
		b, err := Build(Options{Codec: c, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
		all = append(all, b...)
	}
	return append(out, all)
}

// decodeVerified is the decode path every consumer of stored or received
// batches uses: CRC first, then records.
func decodeVerified(data []byte) ([]Record, error) {
	_, b, err := Verify(data)
	if err != nil {
		return nil, err
	}
	return Records(b)
}

func FuzzRecords(f *testing.F) {
	for _, b := range seedBatches(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Records must not panic on anything, verified or not; and to reach
		// past the CRC, also decode a copy with length, magic and CRC fixed
		// up, as a malicious producer would send.
		_, _ = Records(data)
		if len(data) >= HeaderSize && len(data)-12 <= MaxBatchSize {
			d := append([]byte{}, data...)
			binary.BigEndian.PutUint32(d[8:], uint32(len(d)-12))
			d[16] = 2
			binary.BigEndian.PutUint32(d[17:], Checksum(d))
			_, _ = decodeVerified(d)
		}
		recs, err := decodeVerified(data)
		if _, _, verr := Verify(data); verr != nil {
			if err == nil || recs != nil {
				t.Fatalf("records returned from a batch that fails Verify (%v)", verr)
			}
			return
		}
		if err == nil {
			h, _ := ParseHeader(data)
			if len(recs) != int(h.NumRecords) {
				t.Fatalf("%d records, header says %d", len(recs), h.NumRecords)
			}
		}
	})
}

func FuzzVerify(f *testing.F) {
	for _, b := range seedBatches(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, b, err := Verify(data)
		if err != nil {
			if b != nil {
				t.Fatal("bytes returned with an error")
			}
			return
		}
		if len(b) != h.Size() || len(b) > len(data) || Checksum(b) != h.CRC || h.Magic != 2 {
			t.Fatalf("inconsistent verified batch: %+v, %d bytes", h, len(b))
		}
		_ = Each(data, func(Header, []byte) error { return nil })
	})
}
