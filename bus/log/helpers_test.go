package log

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wispbus/wisp/internal/batch"
)

var codecs = []batch.Codec{batch.None, batch.Gzip, batch.Snappy, batch.LZ4, batch.Zstd}

// forEachCodec runs a storage test once per codec (nats-server style).
func forEachCodec(t *testing.T, fn func(t *testing.T, c batch.Codec)) {
	t.Helper()
	for _, c := range codecs {
		t.Run(c.String(), func(t *testing.T) { fn(t, c) })
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testConfig is DefaultConfig with small segments and index spacing so that
// tests cross segment and index boundaries with little data.
func testConfig() Config {
	c := DefaultConfig()
	c.SegmentBytes = 64 << 10
	c.IndexIntervalBytes = 512
	return c
}

func openT(t testing.TB, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(dir, cfg, quietLogger())
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// genRecords makes n records with varied shapes: null and empty keys and
// values, headers, increasing timestamps from ts.
func genRecords(rng *rand.Rand, n int, ts int64) []batch.Record {
	recs := make([]batch.Record, n)
	for i := range recs {
		r := &recs[i]
		r.Timestamp = ts + int64(i)
		switch rng.IntN(6) {
		case 0: // null key
		case 1:
			r.Key = []byte{}
		default:
			r.Key = []byte(fmt.Sprintf("key-%d", rng.IntN(50)))
		}
		switch rng.IntN(8) {
		case 0: // null value
		case 1:
			r.Value = []byte{}
		default:
			r.Value = bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, rng.IntN(200))
		}
		if rng.IntN(3) == 0 {
			r.Headers = []batch.RecordHeader{{Key: "h", Value: []byte("v")}, {Key: "nil"}}
		}
	}
	return recs
}

func build(t testing.TB, c batch.Codec, recs []batch.Record) []byte {
	t.Helper()
	opts := batch.NoProducer
	opts.Codec = c
	b, err := batch.Build(opts, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kv builds a batch of records with the given keys and values ("" key means
// null key, value "<nil>" means tombstone) at timestamp ts.
func kv(t testing.TB, c batch.Codec, ts int64, pairs ...string) []byte {
	t.Helper()
	var recs []batch.Record
	for i := 0; i < len(pairs); i += 2 {
		r := batch.Record{Timestamp: ts}
		if pairs[i] != "" {
			r.Key = []byte(pairs[i])
		}
		if pairs[i+1] != "<nil>" {
			r.Value = []byte(pairs[i+1])
		}
		recs = append(recs, r)
	}
	return build(t, c, recs)
}

// readAll returns every record from offset to the end of the log, reading
// with maxBytes per call, checking CRCs and that offsets only go up.
func readAll(t testing.TB, l *Log, from int64, maxBytes int) []batch.Record {
	t.Helper()
	var out []batch.Record
	end := l.EndOffset()
	next := from
	for next < end {
		data, err := l.Read(next, maxBytes, end)
		if err != nil {
			t.Fatalf("Read(%d): %v", next, err)
		}
		if data == nil {
			t.Fatalf("Read(%d) below end %d returned nothing", next, end)
		}
		err = batch.Each(data, func(h batch.Header, b []byte) error {
			recs, err := batch.Records(b)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if r.Offset >= next {
					out = append(out, r)
				}
			}
			next = h.NextOffset()
			return nil
		})
		if err != nil {
			t.Fatalf("Read(%d): bad data: %v", next, err)
		}
	}
	return out
}

func sameRecords(t testing.TB, got, want []batch.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Offset != w.Offset || g.Timestamp != w.Timestamp || !sameBytes(g.Key, w.Key) ||
			!sameBytes(g.Value, w.Value) || len(g.Headers) != len(w.Headers) {
			t.Fatalf("record %d: got %+v, want %+v", i, g, w)
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || !sameBytes(g.Headers[j].Value, w.Headers[j].Value) {
				t.Fatalf("record %d header %d: got %+v, want %+v", i, j, g.Headers[j], w.Headers[j])
			}
		}
	}
}

// sameBytes distinguishes nil from empty.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// appendRecs appends recs as one batch and returns them with offsets set.
func appendRecs(t testing.TB, l *Log, c batch.Codec, recs []batch.Record) []batch.Record {
	t.Helper()
	first, last, err := l.Append(build(t, c, recs), 1)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if int(last-first+1) != len(recs) {
		t.Fatalf("Append: offsets %d..%d for %d records", first, last, len(recs))
	}
	out := slices.Clone(recs)
	for i := range out {
		out[i].Offset = first + int64(i)
	}
	return out
}

func segFiles(t testing.TB, dir, suffix string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// copyDir copies a log directory, to open a crash-like image of a live log.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// checkFor polls fn until it returns nil or the deadline passes.
func checkFor(t testing.TB, total, every time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(every)
	}
	t.Fatalf("timed out: %v", err)
}

func timeNow() time.Time { return time.Now() }
