package log

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/wispbus/wisp/internal/batch"
)

// FuzzIndexes opens a cleanly shut down log whose index files and start
// offset checkpoint are replaced by arbitrary bytes (a disk that returned
// garbage, a file from another version). Open must succeed, keep every
// batch, and every Read must start with the batch that holds the offset
// asked for: an index that decodes but lies must not serve the wrong data.
//
//	go test -run '^$' -fuzz '^FuzzIndexes$' -fuzztime 30s ./bus/log
func FuzzIndexes(f *testing.F) {
	src := f.TempDir()
	l, err := Open(src, testConfig(), quietLogger())
	if err != nil {
		f.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range 40 {
		if _, _, err := l.Append(build(f, codecs[i%len(codecs)], genRecords(rng, 1+rng.IntN(4), int64(1000*i))), 1); err != nil {
			f.Fatal(err)
		}
	}
	end := l.EndOffset()
	if err := l.Close(); err != nil {
		f.Fatal(err)
	}
	if n := len(segFiles(f, src, logSuffix)); n != 1 {
		f.Fatalf("%d segments; the fuzz target expects one", n)
	}
	idx, err := os.ReadFile(segPath(src, 0, indexSuffix))
	if err != nil {
		f.Fatal(err)
	}
	tidx, err := os.ReadFile(segPath(src, 0, timeIndexSuffix))
	if err != nil {
		f.Fatal(err)
	}
	if len(idx) < 3*offsetEntrySize {
		f.Fatalf("index of %d bytes: too few entries to seed with", len(idx))
	}
	f.Add(idx, tidx, []byte("0\n"))
	f.Add(idx, tidx, []byte{})
	f.Add(idx[:len(idx)-offsetEntrySize], tidx[:len(tidx)-timeEntrySize], []byte("3\n"))
	lying := append([]byte{}, idx...)
	// The second entry points one byte further: still increasing.
	binary.BigEndian.PutUint32(lying[offsetEntrySize+4:], binary.BigEndian.Uint32(lying[offsetEntrySize+4:])+1)
	f.Add(lying, tidx, []byte("x"))
	swapped := append([]byte{}, idx...)
	// The second entry claims a later offset at its position.
	binary.BigEndian.PutUint32(swapped[offsetEntrySize:], binary.BigEndian.Uint32(swapped[offsetEntrySize:])+1)
	f.Add(swapped, tidx, []byte("99999999999\n"))
	f.Add([]byte{}, []byte{}, []byte("-1"))

	f.Fuzz(func(t *testing.T, idx, tidx, checkpoint []byte) {
		dir := copyDir(t, src)
		write := func(name string, b []byte) {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write(filepath.Base(segPath(dir, 0, indexSuffix)), idx)
		write(filepath.Base(segPath(dir, 0, timeIndexSuffix)), tidx)
		if len(checkpoint) > 0 {
			write(startCheckpointFile, checkpoint)
		} else {
			_ = os.Remove(filepath.Join(dir, startCheckpointFile))
		}
		l, err := Open(dir, testConfig(), quietLogger())
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()
		if l.EndOffset() != end {
			t.Fatalf("end %d, want %d", l.EndOffset(), end)
		}
		start := l.StartOffset()
		if start < 0 || start > end {
			t.Fatalf("start %d outside [0, %d]", start, end)
		}
		for off := start; off < end; off++ {
			data, err := l.Read(off, 1, end)
			if err != nil {
				t.Fatalf("Read(%d): %v", off, err)
			}
			h, err := batch.ParseHeader(data)
			if err != nil {
				t.Fatalf("Read(%d): %v", off, err)
			}
			if off < h.BaseOffset || off > h.LastOffset() {
				t.Fatalf("Read(%d) starts with the batch of offsets %d..%d", off, h.BaseOffset, h.LastOffset())
			}
		}
	})
}
