package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/wispbus/wisp/internal/batch"
)

// File names inside a log directory.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	cleanedSuffix   = ".cleaned" // compaction output not yet swapped in
	swapSuffix      = ".swap"    // compaction output committed, rename pending
	tmpSuffix       = ".tmp"

	startCheckpointFile = "log-start-offset"
	cleanShutdownFile   = ".clean-shutdown"
	cleanerSeenFile     = "cleaner-seen"

	offsetEntrySize = 8  // relative offset uint32 + position uint32
	timeEntrySize   = 12 // max timestamp int64 + relative offset uint32
)

func segPath(dir string, base int64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, suffix))
}

// parseSegName returns the base offset of a "%020d.log" name.
func parseSegName(name, suffix string) (int64, bool) {
	s, ok := strings.CutSuffix(name, suffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

// entry is one sparse index entry, kept in memory for both index files: the
// batch starting at relative offset rel lies at file position pos, and ts
// is the largest timestamp of every batch up to and including it.
type entry struct {
	rel uint32
	pos uint32
	ts  int64
}

// segState is what a segment knows about its content. Recovery, index
// rebuilds and truncation compute it on a private copy and publish it.
type segState struct {
	size       int64
	next       int64 // offset after the last batch; base when empty
	maxTS      int64 // running maximum of batch MaxTimestamp; -1 when empty
	entries    []entry
	sinceEntry int // bytes since the last index entry
}

// segment is one .log file plus its in-memory index.
//
// The segState fields, rollTS and dirty are guarded by Log.mu. The appender
// (holding Log.appendMu) is the only writer of the active segment and
// publishes the new state under Log.mu after its write returns, so a reader
// that snapshots size/entries under Log.mu only reads bytes already in the
// file. entries is append-only while shared: whoever shrinks it (Truncate)
// installs a copy, so a reader's snapshot is never overwritten.
type segment struct {
	base int64
	path string
	f    *os.File
	refs atomic.Int32 // the Log holds one; every reader snapshot holds one

	segState
	rollTS int64 // unix ms the segment's age counts from; 0 while empty
	dirty  bool  // index files lag entries
}

func newSegment(dir string, base int64, f *os.File) *segment {
	s := &segment{base: base, path: segPath(dir, base, logSuffix), f: f}
	s.segState = segState{next: base, maxTS: -1}
	s.refs.Store(1)
	return s
}

func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference; the file closes with the last one, so a
// reader that snapshotted a segment can finish its pread even if retention,
// compaction or truncation removed the segment in the meantime.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		_ = s.f.Close()
	}
}

// observe accounts for the batch h at position pos of a segment with base
// offset base; it is how the appender, recovery, index rebuilds and
// truncation all grow the index.
func (s *segState) observe(base int64, h batch.Header, pos int64, interval int) {
	if s.maxTS < h.MaxTimestamp {
		s.maxTS = h.MaxTimestamp
	}
	if s.sinceEntry >= interval {
		s.entries = append(s.entries, entry{rel: uint32(h.BaseOffset - base), pos: uint32(pos), ts: s.maxTS})
		s.sinceEntry = 0
	}
	s.sinceEntry += h.Size()
	s.next = h.NextOffset()
	s.size = pos + int64(h.Size())
}

// resume returns the state of a segment whose first m index entries are
// known good, and the position to continue scanning from: the batch of entry
// m-1, which observe then counts again without adding an entry, since every
// running maximum up to it is already in entries[m-1].ts.
func resume(entries []entry, m int, base int64) (segState, int64) {
	if m == 0 {
		return segState{next: base, maxTS: -1}, 0
	}
	e := entries[m-1]
	return segState{
		size:    int64(e.pos),
		next:    base + int64(e.rel),
		maxTS:   e.ts,
		entries: slices.Clone(entries[:m]),
	}, int64(e.pos)
}

// lookup returns the file position to start scanning from for offset: the
// last index entry at or below it, or 0.
func lookup(entries []entry, base, offset int64) (int64, int64) {
	rel := offset - base
	i, _ := slices.BinarySearchFunc(entries, rel, func(e entry, r int64) int {
		if int64(e.rel) <= r {
			return -1
		}
		return 1
	})
	if i == 0 {
		return 0, base
	}
	return int64(entries[i-1].pos), base + int64(entries[i-1].rel)
}

// lookupTime returns the position to start scanning from for the first
// batch with a timestamp >= ts: entry j-1's batch and everything before it
// are older than ts when entry j is the first whose running maximum reaches
// ts.
func lookupTime(entries []entry, ts int64) (int64, int64) {
	j, _ := slices.BinarySearchFunc(entries, ts, func(e entry, t int64) int {
		if e.ts < t {
			return -1
		}
		return 1
	})
	if j == 0 {
		return 0, -1
	}
	return int64(entries[j-1].pos), int64(entries[j-1].rel)
}

// reader reads a segment file through a window buffer, so that walking
// batch headers costs one pread per window instead of one per batch.
type reader struct {
	f      *os.File
	limit  int64 // never read at or past this position
	buf    []byte
	bufPos int64
	n      int
}

var errPastLimit = errors.New("log: read past segment end")

func newReader(f *os.File, limit int64, window int) *reader {
	return &reader{f: f, limit: limit, buf: make([]byte, max(min(int64(window), limit), 0))}
}

// at returns n bytes at pos. The slice is valid until the next call.
func (r *reader) at(pos int64, n int) ([]byte, error) {
	if n < 0 || pos < 0 || pos+int64(n) > r.limit {
		return nil, errPastLimit
	}
	if pos >= r.bufPos && pos+int64(n) <= r.bufPos+int64(r.n) {
		off := int(pos - r.bufPos)
		return r.buf[off : off+n], nil
	}
	if n > len(r.buf) {
		b := make([]byte, n)
		if _, err := r.f.ReadAt(b, pos); err != nil {
			return nil, readErr(err)
		}
		return b, nil
	}
	m := int(min(int64(len(r.buf)), r.limit-pos))
	got, err := r.f.ReadAt(r.buf[:m], pos)
	r.bufPos, r.n = pos, got
	if got < n {
		return nil, readErr(err)
	}
	return r.buf[:n], nil
}

func readErr(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return errPastLimit
	}
	return err
}

// header reads and parses the batch header at pos, checking that the whole
// batch lies below the limit.
func (r *reader) header(pos int64) (batch.Header, error) {
	b, err := r.at(pos, batch.HeaderSize)
	if err != nil {
		return batch.Header{}, err
	}
	h, err := batch.ParseHeader(b)
	if err != nil {
		return h, err
	}
	if pos+int64(h.Size()) > r.limit {
		return h, errPastLimit
	}
	return h, nil
}

// encodeIndexes renders entries as the .index and .timeindex file contents.
func encodeIndexes(entries []entry) (idx, tidx []byte) {
	idx = make([]byte, 0, len(entries)*offsetEntrySize)
	tidx = make([]byte, 0, len(entries)*timeEntrySize)
	for _, e := range entries {
		idx = binary.BigEndian.AppendUint32(idx, e.rel)
		idx = binary.BigEndian.AppendUint32(idx, e.pos)
		tidx = binary.BigEndian.AppendUint64(tidx, uint64(e.ts))
		tidx = binary.BigEndian.AppendUint32(tidx, e.rel)
	}
	return idx, tidx
}

// decodeIndexes parses and sanity-checks both index files: equal entry
// counts, strictly increasing offsets and positions, non-decreasing
// timestamps, positions inside the log. ok is false when they must be
// rebuilt.
func decodeIndexes(idx, tidx []byte, logSize int64) ([]entry, bool) {
	if len(idx)%offsetEntrySize != 0 || len(tidx)%timeEntrySize != 0 ||
		len(idx)/offsetEntrySize != len(tidx)/timeEntrySize {
		return nil, false
	}
	n := len(idx) / offsetEntrySize
	entries := make([]entry, n)
	for i := range entries {
		e := entry{
			rel: binary.BigEndian.Uint32(idx[i*offsetEntrySize:]),
			pos: binary.BigEndian.Uint32(idx[i*offsetEntrySize+4:]),
			ts:  int64(binary.BigEndian.Uint64(tidx[i*timeEntrySize:])),
		}
		if binary.BigEndian.Uint32(tidx[i*timeEntrySize+8:]) != e.rel || int64(e.pos)+batch.HeaderSize > logSize {
			return nil, false
		}
		if i > 0 {
			p := entries[i-1]
			if e.rel <= p.rel || e.pos <= p.pos || e.ts < p.ts {
				return nil, false
			}
		}
		entries[i] = e
	}
	return entries, true
}

// writeIndexes replaces both index files of s with entries. They are not
// fsynced: Open validates them and rebuilds damaged ones from the log.
func writeIndexes(dir string, base int64, entries []entry) error {
	idx, tidx := encodeIndexes(entries)
	if err := os.WriteFile(segPath(dir, base, indexSuffix), idx, 0o644); err != nil {
		return err
	}
	return os.WriteFile(segPath(dir, base, timeIndexSuffix), tidx, 0o644)
}

func removeIndexes(dir string, base int64) {
	_ = os.Remove(segPath(dir, base, indexSuffix))
	_ = os.Remove(segPath(dir, base, timeIndexSuffix))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
