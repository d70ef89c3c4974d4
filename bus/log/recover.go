package log

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/wispbus/wisp/internal/batch"
)

// load opens every segment of the directory, recovering as described on
// Open. Called once, before the Log is shared.
func (l *Log) load() error {
	clean, err := l.sweep()
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	var bases []int64
	have := map[int64]bool{}
	for _, e := range ents {
		if b, ok := parseSegName(e.Name(), logSuffix); ok {
			bases = append(bases, b)
			have[b] = true
		}
	}
	for _, e := range ents { // index files without a log are leftovers of a deletion
		for _, suf := range []string{indexSuffix, timeIndexSuffix} {
			if b, ok := parseSegName(e.Name(), suf); ok && !have[b] {
				_ = os.Remove(segPath(l.dir, b, suf))
			}
		}
	}
	slices.Sort(bases)
	start, err := readCheckpoint(l.dir)
	if err != nil {
		l.logger.Warn("log: unreadable start offset checkpoint, using the first segment", "dir", l.dir, "err", err)
		start = 0
	}

	// Only the last segment can hold a torn write: a roll fsyncs the old
	// segment before it creates the new one. If the last segment is empty
	// the crash may have hit a roll, so the one before is checked in full as
	// well (cheap insurance). A clean shutdown skips the full check.
	lastEmpty := false
	if n := len(bases); n > 0 {
		if st, err := os.Stat(segPath(l.dir, bases[n-1], logSuffix)); err == nil && st.Size() == 0 {
			lastEmpty = true
		}
	}
	for i, base := range bases {
		full := !clean && (i == len(bases)-1 || (lastEmpty && i == len(bases)-2))
		s, err := l.openSegment(base, full)
		if err != nil {
			for _, s := range l.segs {
				s.release()
			}
			l.segs = nil
			return err
		}
		l.segs = append(l.segs, s)
	}
	if len(l.segs) == 0 {
		s, err := createSegment(l.dir, max(start, 0))
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
	}
	for i := 1; i < len(l.segs); i++ {
		if p, s := l.segs[i-1], l.segs[i]; p.next > s.base {
			for _, s := range l.segs {
				s.release()
			}
			l.segs = nil
			return fmt.Errorf("log: %s ends at offset %d, after the start of %s", p.path, p.next, s.path)
		}
	}
	last := l.segs[len(l.segs)-1]
	l.end = last.next
	l.start = max(start, l.segs[0].base)
	if l.start > l.end {
		l.logger.Warn("log: start offset checkpoint is past the end of the log; clamping",
			"dir", l.dir, "checkpoint", l.start, "end", l.end)
		l.start = l.end
	}
	l.durable = l.end
	if !clean {
		// After a process crash the tail may sit in the page cache only;
		// make it durable before claiming DurableOffset == EndOffset.
		if err := datasync(last.f); err != nil {
			return fmt.Errorf("log: fsync %s: %w", last.path, err)
		}
	}
	var drop []*segment
	for len(l.segs) > 1 && l.segs[1].base <= l.start {
		drop = append(drop, l.segs[0])
		l.segs = l.segs[1:]
	}
	l.removeSegments(drop)
	return nil
}

// sweep finishes or discards what a crash left half done and consumes the
// clean-shutdown marker. It reports whether the last shutdown was clean.
func (l *Log) sweep() (clean bool, err error) {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return false, fmt.Errorf("log: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		path := l.dir + string(os.PathSeparator) + name
		switch {
		case name == cleanShutdownFile:
			clean = true
		case strings.HasSuffix(name, cleanedSuffix), strings.HasSuffix(name, tmpSuffix):
			// Compaction output that never reached its commit point.
			l.logger.Info("log: removing leftover file", "file", path)
			_ = os.Remove(path)
		case strings.HasSuffix(name, logSuffix+swapSuffix):
			// Compaction output past its commit point: finish the swap.
			base, ok := parseSegName(strings.TrimSuffix(name, swapSuffix), logSuffix)
			if !ok {
				continue
			}
			l.logger.Info("log: completing interrupted compaction swap", "file", path)
			removeIndexes(l.dir, base)
			if err := os.Rename(path, segPath(l.dir, base, logSuffix)); err != nil {
				return false, fmt.Errorf("log: %w", err)
			}
		case strings.HasSuffix(name, swapSuffix):
			_ = os.Remove(path)
		}
	}
	if clean {
		// Consume the marker durably before anything can be appended, so
		// that a crash from now on is never mistaken for a clean stop.
		if err := os.Remove(l.dir + string(os.PathSeparator) + cleanShutdownFile); err != nil {
			return false, fmt.Errorf("log: %w", err)
		}
	}
	if err := syncDir(l.dir); err != nil {
		return false, fmt.Errorf("log: %w", err)
	}
	return clean, nil
}

func createSegment(dir string, base int64) (*segment, error) {
	f, err := os.OpenFile(segPath(dir, base, logSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	removeIndexes(dir, base)
	if err := syncDir(dir); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("log: %w", err)
	}
	return newSegment(dir, base, f), nil
}

// openSegment opens one segment. full checks every batch's CRC and
// truncates a torn or corrupt tail; otherwise the index files are trusted
// after sanity checks and only the batch headers after the last index entry
// are read (falling back to the full check if those are damaged).
func (l *Log) openSegment(base int64, full bool) (*segment, error) {
	path := segPath(l.dir, base, logSuffix)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("log: %w", err)
	}
	s := newSegment(l.dir, base, f)
	size := st.Size()
	if size > math.MaxUint32 {
		_ = f.Close()
		return nil, fmt.Errorf("log: %s: %d bytes is over the 4 GiB segment limit", path, size)
	}
	ok := false
	if !full {
		ok = l.loadIndexed(s, size)
	}
	if !ok {
		if err := l.recoverSegment(s, size); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	if s.size > 0 {
		// The age clock restarts from the first batch's timestamp.
		r := newReader(f, s.size, batch.HeaderSize)
		if h, err := r.header(0); err == nil {
			s.rollTS = min(max(h.MaxTimestamp, 1), l.now().UnixMilli())
		}
	}
	if s.dirty {
		if err := writeIndexes(l.dir, base, s.entries); err != nil {
			l.logger.Warn("log: cannot write index", "file", path, "err", err)
		}
		s.dirty = false
	}
	return s, nil
}

// loadIndexed trusts the index files if they pass decodeIndexes and their
// last entry points at a batch with the right offset, then walks the batch
// headers after it. It returns false if the headers are damaged, in which
// case the caller runs the full recovery.
func (l *Log) loadIndexed(s *segment, size int64) bool {
	interval := l.cfg.IndexIntervalBytes
	idx, err1 := os.ReadFile(segPath(l.dir, s.base, indexSuffix))
	tidx, err2 := os.ReadFile(segPath(l.dir, s.base, timeIndexSuffix))
	var entries []entry
	ok := err1 == nil && err2 == nil
	if ok {
		entries, ok = decodeIndexes(idx, tidx, size)
	}
	r := newReader(s.f, size, 64<<10)
	if ok && len(entries) > 0 {
		e := entries[len(entries)-1]
		h, err := r.header(int64(e.pos))
		ok = err == nil && h.BaseOffset == s.base+int64(e.rel)
	}
	if !ok {
		if size > 0 {
			l.logger.Warn("log: rebuilding damaged or missing index", "file", s.path)
		}
		entries = nil
	}
	st, pos := resume(entries, len(entries), s.base)
	for pos < size {
		h, err := r.header(pos)
		if err != nil || h.BaseOffset < st.next || h.LastOffset()-s.base > math.MaxUint32 {
			return false
		}
		// The index vouches for nothing past its last entry, so the
		// batches there are checked whole (CRC), not only their
		// headers: a batch with a sound header and a damaged body
		// must be cut by the full recovery, not served as an error
		// at every fetch of its offset (FuzzRecovery found one). It
		// costs reading about IndexIntervalBytes per segment, or the
		// whole segment when its index was missing anyway.
		b, err := r.at(pos, h.Size())
		if err != nil {
			return false
		}
		if _, _, err := batch.Verify(b); err != nil {
			return false
		}
		st.observe(s.base, h, pos, interval)
		pos += int64(h.Size())
	}
	s.segState = st
	s.dirty = !ok || len(st.entries) != len(entries)
	return true
}

// recoverSegment reads every batch, checks its CRC and that offsets only go
// up, and truncates the file at the first batch that fails.
func (l *Log) recoverSegment(s *segment, size int64) error {
	interval := l.cfg.IndexIntervalBytes
	r := newReader(s.f, size, 1<<20)
	st, pos := resume(nil, 0, s.base)
	var reason error
	for pos < size {
		hb, err := r.at(pos, min(batch.HeaderSize, int(size-pos)))
		if err != nil {
			return fmt.Errorf("log: read %s: %w", s.path, err)
		}
		h, err := batch.ParseHeader(hb)
		if err != nil {
			reason = err
			break
		}
		if pos+int64(h.Size()) > size {
			reason = fmt.Errorf("batch of %d bytes runs past the end of the file: %w", h.Size(), batch.ErrShort)
			break
		}
		b, err := r.at(pos, h.Size())
		if err != nil {
			return fmt.Errorf("log: read %s: %w", s.path, err)
		}
		if _, _, err := batch.Verify(b); err != nil {
			reason = err
			break
		}
		if h.BaseOffset < st.next || h.LastOffset()-s.base > math.MaxUint32 {
			reason = fmt.Errorf("offsets %d..%d out of order (expected >= %d)", h.BaseOffset, h.LastOffset(), st.next)
			break
		}
		st.observe(s.base, h, pos, interval)
		pos += int64(h.Size())
	}
	if pos < size {
		l.logger.Warn("log: truncating torn or corrupt tail", "file", s.path, "position", pos,
			"dropped_bytes", size-pos, "reason", reason)
		if err := s.f.Truncate(pos); err != nil {
			return fmt.Errorf("log: truncate %s: %w", s.path, err)
		}
		if err := datasync(s.f); err != nil {
			return fmt.Errorf("log: fsync %s: %w", s.path, err)
		}
	}
	s.segState = st
	s.dirty = true
	return nil
}

// readCheckpoint returns the persisted log start offset, or -1 without one.
func readCheckpoint(dir string) (int64, error) {
	b, err := os.ReadFile(dir + string(os.PathSeparator) + startCheckpointFile)
	if errors.Is(err, os.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		return -1, fmt.Errorf("bad checkpoint %q", b)
	}
	return n, nil
}

// writeCheckpoint durably replaces the log start offset checkpoint.
func writeCheckpoint(dir string, start int64) error {
	return writeFileAtomic(dir, startCheckpointFile, []byte(strconv.FormatInt(start, 10)+"\n"))
}

// writeFileAtomic writes name through a fsynced temp file and a rename.
func writeFileAtomic(dir, name string, data []byte) error {
	path := dir + string(os.PathSeparator) + name
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("log: write %s: %w", path, err)
	}
	return nil
}
