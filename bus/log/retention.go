package log

import (
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Retain applies retention.bytes and retention.ms: it deletes whole closed
// segments from the front of the log while the log is larger than
// RetentionBytes without them, or their newest timestamp is older than
// RetentionAge before now, or they lie wholly below the start offset. It
// stops at the first segment that breaks none of these rules (so the log
// never gets a hole) and never touches the active segment. The new start
// offset is persisted before any file goes.
func (l *Log) Retain(now time.Time) (deletedSegments int, err error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.RLock()
	if err := l.usableLocked(); err != nil {
		l.mu.RUnlock()
		return 0, err
	}
	cfg, start, segs := l.cfg, l.start, l.segs
	total := int64(0)
	for _, s := range segs {
		total += s.size
	}
	cutoff := now.UnixMilli() - cfg.RetentionAge.Milliseconds()
	n := 0
	for ; n < len(segs)-1; n++ {
		s := segs[n]
		byAge := cfg.RetentionAge > 0 && s.maxTS < cutoff
		bySize := cfg.RetentionBytes >= 0 && total-s.size >= cfg.RetentionBytes
		byStart := segs[n+1].base <= start
		if !byAge && !bySize && !byStart {
			break
		}
		total -= s.size
	}
	var newStart int64
	if n > 0 {
		newStart = max(start, segs[n].base)
	}
	l.mu.RUnlock()
	if n == 0 {
		return 0, nil
	}
	return n, l.dropFrontLocked(n, newStart)
}

// dropFrontLocked persists newStart, then removes the first n segments.
// appendMu must be held.
func (l *Log) dropFrontLocked(n int, newStart int64) error {
	if err := writeCheckpoint(l.dir, newStart); err != nil {
		return err
	}
	l.mu.Lock()
	drop := slices.Clone(l.segs[:n])
	l.segs = slices.Clone(l.segs[n:])
	l.start = max(l.start, newStart)
	l.mu.Unlock()
	l.removeSegments(drop)
	return nil
}

// removeSegments deletes the files of segments already unlinked from the
// list and drops the Log's reference; readers still holding one finish
// their reads on the unlinked file.
func (l *Log) removeSegments(segs []*segment) {
	for _, s := range segs {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			if err := os.Remove(segPath(l.dir, s.base, suf)); err != nil && !os.IsNotExist(err) {
				l.logger.Warn("log: cannot remove segment file", "file", segPath(l.dir, s.base, suf), "err", err)
			}
		}
		s.release()
	}
}

// DeleteRecordsBefore advances the log start offset to offset (Kafka
// DeleteRecords), persists it, and deletes the segments that now lie wholly
// below it. Offsets below the current start are a no-op; offsets past
// EndOffset fail with kerr.OffsetOutOfRange.
func (l *Log) DeleteRecordsBefore(offset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.RLock()
	err := l.usableLocked()
	start, end := l.start, l.end
	n := 0
	for n < len(l.segs)-1 && l.segs[n+1].base <= offset {
		n++
	}
	l.mu.RUnlock()
	if err != nil {
		return err
	}
	if offset > end {
		return fmt.Errorf("log: delete records before %d: past end offset %d: %w", offset, end, kerr.OffsetOutOfRange)
	}
	if offset <= start {
		return nil
	}
	return l.dropFrontLocked(n, offset)
}

// Truncate removes every record at or after offset, for a follower whose
// log diverged from its leader's. Truncation works on whole batches: the
// batch containing offset goes entirely, so EndOffset() afterwards is
// offset when offset is a batch boundary, else the base offset of the batch
// that contained it (and never more than offset). Truncating at or below
// StartOffset (or below the first segment) empties the log and restarts it
// at offset. It is a no-op at or
// past EndOffset. The change is fsynced before Truncate returns.
func (l *Log) Truncate(offset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.RLock()
	err := l.usableLocked()
	start, end := l.start, l.end
	segs := slices.Clone(l.segs)
	i := l.findLocked(offset)
	// Below the first segment (compaction may have removed the one that
	// held the start offset) there is nothing to keep either.
	full := offset <= start || offset < l.segs[0].base
	var v view
	if err == nil && offset < end && !full {
		v = l.viewLocked(i)
	}
	l.mu.RUnlock()
	if err != nil {
		return err
	}
	if offset >= end {
		return nil
	}
	if full {
		return l.truncateFullyLocked(offset, segs)
	}
	defer v.seg.release()
	s := v.seg

	// Resume from the last index entry whose batch ends before offset and
	// walk headers until the first batch that reaches offset.
	m, _ := slices.BinarySearchFunc(v.entries, offset-s.base, func(e entry, rel int64) int {
		if int64(e.rel) < rel {
			return -1
		}
		return 1
	})
	// Entry m-1 starts below offset but its batch may contain offset; entry
	// m-2's batch ends before entry m-1's starts.
	m = max(m-1, 0)
	st, pos := resume(v.entries, m, s.base)
	r := newReader(s.f, v.size, 64<<10)
	interval := l.Config().IndexIntervalBytes
	for pos < v.size {
		h, err := r.header(pos)
		if err != nil {
			return fmt.Errorf("log: truncate %s at %d: %v: %w", s.path, pos, err, kerr.KafkaStorageError)
		}
		if h.LastOffset() >= offset {
			break
		}
		st.observe(s.base, h, pos, interval)
		pos += int64(h.Size())
	}
	st.size = pos
	if err := s.f.Truncate(pos); err != nil {
		l.fail(fmt.Errorf("log: truncate %s: %v: %w", s.path, err, kerr.KafkaStorageError))
		return l.failed
	}
	if err := datasync(s.f); err != nil {
		l.fail(fmt.Errorf("log: fsync %s: %v: %w", s.path, err, kerr.KafkaStorageError))
		return l.failed
	}
	l.mu.Lock()
	drop := slices.Clone(l.segs[i+1:])
	l.segs = slices.Clone(l.segs[:i+1])
	s.segState = st
	s.dirty = true
	if st.size == 0 {
		s.rollTS = 0
	}
	l.end = st.next
	l.durable = min(l.durable, l.end)
	l.truncGen++
	l.wakeLocked()
	l.wakeDurLocked()
	l.mu.Unlock()
	removeIndexes(l.dir, s.base) // stale now; rewritten at roll or Close
	l.removeSegments(drop)
	return nil
}

// truncateFullyLocked replaces the whole log with an empty segment at
// offset. appendMu must be held.
func (l *Log) truncateFullyLocked(offset int64, segs []*segment) error {
	if err := writeCheckpoint(l.dir, offset); err != nil {
		return err
	}
	// Unlink first (the new segment may reuse a base), keep the old list
	// published until the new one is ready: readers keep reading the
	// unlinked files meanwhile.
	for _, s := range segs {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			_ = os.Remove(segPath(l.dir, s.base, suf))
		}
	}
	ns, err := createSegment(l.dir, offset)
	if err != nil {
		l.fail(fmt.Errorf("%w: %w", kerr.KafkaStorageError, err))
		return l.failed
	}
	l.mu.Lock()
	l.segs = []*segment{ns}
	l.start, l.end, l.durable = offset, offset, offset
	l.truncGen++
	l.wakeLocked()
	l.wakeDurLocked()
	l.mu.Unlock()
	for _, s := range segs {
		s.release()
	}
	return nil
}
