// Package log is wisp's durable partition log: a directory of segment files
// holding Kafka RecordBatch v2 batches exactly as producers built them.
//
// A directory holds, per segment, "%020d.log" (the batches, named by the
// segment's base offset), "%020d.index" (sparse offset index: relative
// offset uint32 + file position uint32, big-endian, one entry per
// IndexIntervalBytes) and "%020d.timeindex" (running maximum timestamp int64
// + relative offset uint32), plus "log-start-offset" (the persisted log
// start offset). Index files are written when a segment is rolled or the
// log is closed and are rebuilt from the log whenever they look wrong; the
// in-memory copy is what lookups use.
//
// Usage:
//
//	l, err := log.Open(dir, log.DefaultConfig(), logger)
//	first, last, err := l.Append(batches, epoch) // page cache, no fsync
//	err = l.Sync(ctx, last+1)                    // group-committed fsync
//	data, err := l.Read(offset, 1<<20, l.DurableOffset())
//
// # Locking
//
// Lock order: compactMu → appendMu → mu. appendMu serializes everything that
// changes the files (appends, rolls, truncation, retention, compaction
// swaps, Close) and is held across their I/O. mu is a RWMutex guarding the
// in-memory state (segment list, offsets, per-segment size and index); it is
// held only for short sections without I/O, so readers, who snapshot under
// mu.RLock and pread without it, never wait for a write syscall and never
// make a writer wait for theirs. The flusher goroutine takes only mu.
// Helpers whose names end in Locked say which lock they expect: mu for
// usableLocked, wakeLocked, wakeDurLocked, findLocked, viewLocked and
// viewsLocked; appendMu for writeLocked, rollLocked, dropFrontLocked and
// truncateFullyLocked.
package log

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/internal/batch"
)

// ErrClosed is returned by every method of a closed Log.
var ErrClosed = errors.New("log: closed")

// Log is one partition's log. All methods are safe for concurrent use.
type Log struct {
	dir    string
	logger *slog.Logger
	now    func() time.Time // wall clock for segment age; tests replace it

	compactMu sync.Mutex      // serializes Compact
	seen      map[int64]int64 // segment base → unix ms compaction first saw it (compactMu)

	appendMu sync.Mutex // see the package doc

	mu       sync.RWMutex
	cfg      Config
	segs     []*segment // by base offset; the last is the active segment
	start    int64
	end      int64
	durable  int64  // offsets below are fsynced
	truncGen uint64 // bumped by Truncate so an in-flight fsync cannot claim new data
	notify   chan struct{}
	durCh    chan struct{}
	closed   bool  // no new appends; Close in progress or done
	shut     bool  // Close finished
	failed   error // sticky: an fsync failed, the page cache can no longer be trusted

	notifyTaken atomic.Bool // someone holds notify: replace it on the next change
	durTaken    atomic.Bool // same for durCh

	kick   chan struct{} // wakes the flusher (FlushAlways)
	reconf chan struct{} // SetConfig happened
	stop   chan struct{}
	wg     sync.WaitGroup
}

// Open opens the log in dir, creating the directory if needed, and recovers
// it: leftovers of an interrupted compaction are finished or removed; unless
// the last Close completed, the last segment (and the one before it if the
// last is empty, as after a crash during a roll) is read batch by batch and
// a torn or corrupt tail (short header, bad length, bad CRC, offsets going
// backwards) is truncated back to the last good batch, with a warning that
// names the file, the position and the bytes dropped. Index files that are
// missing or fail sanity checks are rebuilt. Nothing before the first bad
// byte is lost.
func Open(dir string, cfg Config, logger *slog.Logger) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	l := &Log{
		dir:    dir,
		logger: logger,
		now:    time.Now,
		cfg:    cfg,
		notify: make(chan struct{}),
		durCh:  make(chan struct{}),
		kick:   make(chan struct{}, 1),
		reconf: make(chan struct{}, 1),
		stop:   make(chan struct{}),
	}
	if err := l.load(); err != nil {
		return nil, err
	}
	l.seen = readSeen(l.dir)
	l.wg.Add(1)
	go l.run()
	return l, nil
}

// usableLocked reports why the log cannot take writes. mu must be held.
func (l *Log) usableLocked() error {
	if l.closed {
		return ErrClosed
	}
	return l.failed
}

// wakeLocked wakes Notify waiters; wakeDurLocked wakes Sync waiters. mu
// must be held for writing. Channels are replaced only if someone took the
// current one, so an append nobody waits for allocates nothing.
func (l *Log) wakeLocked() {
	if l.notifyTaken.Swap(false) {
		close(l.notify)
		l.notify = make(chan struct{})
	}
}

func (l *Log) wakeDurLocked() {
	if l.durTaken.Swap(false) {
		close(l.durCh)
		l.durCh = make(chan struct{})
	}
}

// checkBatches verifies that buf is one or more whole batches with good
// CRCs, none larger than maxBytes. dense requires lastOffsetDelta ==
// recordCount-1 (what producers send).
func checkBatches(buf []byte, maxBytes int, dense bool) (n int, err error) {
	if len(buf) == 0 {
		return 0, fmt.Errorf("log: no record batch: %w", kerr.CorruptMessage)
	}
	for pos := 0; pos < len(buf); n++ {
		b := buf[pos:]
		if h, err := batch.ParseHeader(b); err == nil && h.Size() > maxBytes {
			return n, fmt.Errorf("log: batch %d is %d bytes, over the limit of %d: %w", n, h.Size(), maxBytes, kerr.MessageTooLarge)
		}
		h, _, err := batch.Verify(b)
		if err != nil {
			return n, fmt.Errorf("log: batch %d at byte %d: %w: %w", n, pos, kerr.CorruptMessage, err)
		}
		if dense && (h.NumRecords <= 0 || h.LastOffsetDelta != h.NumRecords-1) {
			return n, fmt.Errorf("log: batch %d: %d records with last offset delta %d: %w",
				n, h.NumRecords, h.LastOffsetDelta, kerr.CorruptMessage)
		}
		pos += h.Size()
	}
	return n, nil
}

// Append writes batches, one or more concatenated RecordBatch v2, at the
// end of the log and returns the offsets of the first and last record. It
// verifies every CRC first and writes nothing if any batch is bad
// (kerr.CorruptMessage) or too large (kerr.MessageTooLarge). It rewrites
// each batch's BaseOffset and PartitionLeaderEpoch in the caller's buffer,
// keeps no reference to it, and returns once the bytes are in the page
// cache: durability is Sync's job, so a caller holding its own lock can
// release it before waiting.
func (l *Log) Append(batches []byte, leaderEpoch int32) (first, last int64, err error) {
	l.mu.RLock()
	maxBytes := l.cfg.MaxBatchBytes
	l.mu.RUnlock()
	if _, err := checkBatches(batches, maxBytes, true); err != nil {
		return -1, -1, err
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.RLock()
	err = l.usableLocked()
	next, cfg := l.end, l.cfg
	l.mu.RUnlock()
	if err != nil {
		return -1, -1, err
	}
	first = next
	for b := batches; len(b) > 0; {
		h, _ := batch.ParseHeader(b)
		batch.SetBaseOffset(b, next)
		batch.SetLeaderEpoch(b, leaderEpoch)
		next += int64(h.LastOffsetDelta) + 1
		b = b[h.Size():]
	}
	if err := l.writeLocked(batches, first, next-1, cfg); err != nil {
		return -1, -1, err
	}
	return first, next - 1, nil
}

// AppendReplicated appends batches copied from a leader, keeping their
// offsets and leader epochs. The first batch must start at EndOffset() and
// offsets must increase (gaps are allowed: compacted batches have them).
// It returns the last offset written.
func (l *Log) AppendReplicated(batches []byte) (last int64, err error) {
	l.mu.RLock()
	maxBytes := l.cfg.MaxBatchBytes
	l.mu.RUnlock()
	// Followers must take whatever the leader accepted, whatever the local
	// limit says; MaxBatchSize still bounds it.
	if _, err := checkBatches(batches, max(maxBytes, batch.MaxBatchSize), false); err != nil {
		return -1, err
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.RLock()
	err = l.usableLocked()
	end, cfg := l.end, l.cfg
	l.mu.RUnlock()
	if err != nil {
		return -1, err
	}
	next := end
	for b := batches; len(b) > 0; {
		h, _ := batch.ParseHeader(b)
		if (next == end && h.BaseOffset != end) || h.BaseOffset < next {
			return -1, fmt.Errorf("log: replicated batch at offset %d, expected %d: %w",
				h.BaseOffset, next, kerr.OffsetOutOfRange)
		}
		next = h.NextOffset()
		b = b[h.Size():]
	}
	first, _ := batch.ParseHeader(batches)
	if err := l.writeLocked(batches, first.BaseOffset, next-1, cfg); err != nil {
		return -1, err
	}
	return next - 1, nil
}

// writeLocked rolls if needed and writes data, whole batches with offsets
// first..last, at the end of the active segment with one pwrite, then
// publishes the new end. appendMu must be held.
func (l *Log) writeLocked(data []byte, first, last int64, cfg Config) error {
	l.mu.RLock()
	s := l.segs[len(l.segs)-1]
	l.mu.RUnlock()
	// s.size and s.rollTS change only under appendMu, which we hold.
	n := int64(len(data))
	if s.size > 0 {
		now := l.now().UnixMilli()
		aged := cfg.SegmentAge > 0 && s.rollTS > 0 && now-s.rollTS >= cfg.SegmentAge.Milliseconds()
		if aged || s.size+n > cfg.SegmentBytes || s.size+n > math.MaxUint32 || last-s.base > math.MaxUint32 {
			var err error
			if s, err = l.rollLocked(s, first); err != nil {
				return err
			}
		}
	}
	pos := s.size
	if _, err := s.f.WriteAt(data, pos); err != nil {
		// Whatever part landed is beyond s.size and will be overwritten.
		_ = s.f.Truncate(pos)
		return fmt.Errorf("log: %v: %w", err, kerr.KafkaStorageError) // err names the file
	}
	now := l.now().UnixMilli()
	l.mu.Lock()
	for b, p := data, pos; len(b) > 0; {
		h, _ := batch.ParseHeader(b)
		s.observe(s.base, h, p, cfg.IndexIntervalBytes)
		p += int64(h.Size())
		b = b[h.Size():]
	}
	s.dirty = true
	if s.rollTS == 0 {
		s.rollTS = now
	}
	l.end = s.next
	l.wakeLocked()
	l.mu.Unlock()
	return nil
}

// rollLocked closes the active segment s and starts a new one at base. The
// old segment is fsynced first, whatever the flush policy, so that only the
// last segment can ever hold a torn write. appendMu must be held.
func (l *Log) rollLocked(s *segment, base int64) (*segment, error) {
	if err := datasync(s.f); err != nil {
		l.fail(fmt.Errorf("log: fsync %s: %v: %w", s.path, err, kerr.KafkaStorageError))
		return nil, l.failed
	}
	if err := writeIndexes(l.dir, s.base, s.entries); err != nil {
		l.logger.Warn("log: cannot write index; it will be rebuilt at the next open", "file", s.path, "err", err)
	}
	ns, err := createSegment(l.dir, base)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", kerr.KafkaStorageError, err)
	}
	l.mu.Lock()
	s.dirty = false
	l.segs = append(l.segs, ns)
	l.mu.Unlock()
	return ns, nil
}

// fail records a fatal storage error; mu must not be held.
func (l *Log) fail(err error) {
	l.mu.Lock()
	if l.failed == nil {
		l.failed = err
		l.logger.Error("log: storage failure; the log refuses writes until reopened", "dir", l.dir, "err", err)
	}
	l.wakeDurLocked()
	l.mu.Unlock()
}

// StartOffset is the log start offset: the first offset that can be read.
func (l *Log) StartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.start
}

// EndOffset is the log end offset: the offset the next record will get.
func (l *Log) EndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.end
}

// DurableOffset is the offset after the last fsynced record. Under FlushOS,
// which never promises durability, it is EndOffset.
func (l *Log) DurableOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.cfg.Flush == FlushOS {
		return l.end
	}
	return l.durable
}

// Notify returns a channel that is closed when EndOffset or DurableOffset
// next advances (or the log is truncated or closed). Take a new channel
// after each wake-up:
//
//	for l.DurableOffset() <= offset {
//		ch := l.Notify()
//		if l.DurableOffset() > offset { break }
//		select { case <-ch: case <-ctx.Done(): return ctx.Err() }
//	}
func (l *Log) Notify() <-chan struct{} {
	l.mu.RLock()
	defer l.mu.RUnlock()
	l.notifyTaken.Store(true)
	return l.notify
}

// Size is the total size of the segment files in bytes.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := int64(0)
	for _, s := range l.segs {
		n += s.size
	}
	return n
}

// SetConfig changes the configuration at runtime. It takes effect for the
// next append (segment size and age, index interval, batch limit), the next
// Retain or Compact, and at once for the flush policy.
func (l *Log) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.RLock()
	old, closed, end, active := l.cfg, l.closed, l.end, l.segs[len(l.segs)-1]
	l.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if old.Flush == FlushOS && cfg.Flush != FlushOS {
		// Under FlushOS DurableOffset reports EndOffset; make that true
		// before switching, so that it never goes backwards.
		if err := datasync(active.f); err != nil {
			l.fail(fmt.Errorf("log: fsync %s: %v: %w", active.path, err, kerr.KafkaStorageError))
			return l.failed
		}
	}
	l.mu.Lock()
	if old.Flush == FlushOS && cfg.Flush != FlushOS {
		l.durable = max(l.durable, end)
	}
	l.cfg = cfg
	l.wakeDurLocked() // Sync waiters re-check the policy
	l.mu.Unlock()
	select {
	case l.reconf <- struct{}{}:
	default:
	}
	return nil
}

// Config returns the current configuration.
func (l *Log) Config() Config {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cfg
}

// Dir is the log's directory.
func (l *Log) Dir() string { return l.dir }

// Close flushes and closes the log: it stops the flusher, fsyncs the
// active segment, writes its index files and a clean-shutdown marker (so
// the next Open skips the full tail check), and closes the files once no
// reader uses them. Pending Sync calls return nil once the final fsync is
// done. Close is idempotent.
func (l *Log) Close() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	l.wg.Wait()

	l.mu.RLock()
	segs := slices.Clone(l.segs)
	failed := l.failed
	l.mu.RUnlock()
	active := segs[len(segs)-1]
	err := failed
	if err == nil {
		if serr := datasync(active.f); serr != nil {
			err = fmt.Errorf("log: fsync %s: %v: %w", active.path, serr, kerr.KafkaStorageError)
		}
	}
	for _, s := range segs {
		if s.dirty {
			if werr := writeIndexes(l.dir, s.base, s.entries); werr != nil && err == nil {
				err = fmt.Errorf("log: %w", werr)
			}
		}
	}
	if err == nil {
		err = writeFileAtomic(l.dir, cleanShutdownFile, nil)
	}
	l.mu.Lock()
	if err == nil {
		l.durable = l.end
	}
	l.shut = true
	l.wakeDurLocked()
	l.wakeLocked()
	l.mu.Unlock()
	for _, s := range segs {
		s.release()
	}
	return err
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	cerr := l.Close()
	if err := os.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("log: %w", err)
	}
	if cerr != nil && !errors.Is(cerr, kerr.KafkaStorageError) {
		return cerr
	}
	return nil
}

// findLocked returns the index of the segment that holds offset: the last
// one whose base is at or below it (or 0). mu must be held.
func (l *Log) findLocked(offset int64) int {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset }) - 1
	return max(i, 0)
}

// view is a reader's snapshot of one segment; it holds a reference.
type view struct {
	seg     *segment
	size    int64
	maxTS   int64
	entries []entry
}

// viewLocked snapshots segment i. mu must be held (read is enough).
func (l *Log) viewLocked(i int) view {
	s := l.segs[i]
	s.acquire()
	return view{seg: s, size: s.size, maxTS: s.maxTS, entries: s.entries}
}

// viewsLocked snapshots segments i and after. mu must be held.
func (l *Log) viewsLocked(i int) []view {
	vs := make([]view, 0, len(l.segs)-i)
	for ; i < len(l.segs); i++ {
		vs = append(vs, l.viewLocked(i))
	}
	return vs
}

func releaseViews(vs []view) {
	for _, v := range vs {
		v.seg.release()
	}
}

var windowPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// locate returns the position and header of the first batch in v whose
// last offset is >= offset, or found == false if there is none.
func (v view) locate(offset int64) (pos int64, h batch.Header, found bool, err error) {
	wp := windowPool.Get().(*[]byte)
	defer windowPool.Put(wp)
	r := &reader{f: v.seg.f, limit: v.size, buf: *wp}
	pos, at := lookup(v.entries, v.seg.base, offset)
	if pos > 0 {
		// Entries are trusted only as far as they check out: a bad one
		// costs a scan from the start, never a wrong answer.
		if h, err := r.header(pos); err != nil || h.BaseOffset != at {
			pos = 0
		}
	}
	for pos < v.size {
		h, err = r.header(pos)
		if err != nil {
			return pos, h, false, fmt.Errorf("log: %s at %d: %v: %w", v.seg.path, pos, err, kerr.KafkaStorageError)
		}
		if h.LastOffset() >= offset {
			return pos, h, true, nil
		}
		pos += int64(h.Size())
	}
	return pos, h, false, nil
}

// Read returns whole batches starting with the one that contains offset:
// as many as fit in maxBytes, but at least one whole batch if any lies
// below upTo, and only batches whose last offset is below upTo. It returns
// (nil, nil) when there is nothing below upTo yet (offset >= upTo), and
// kerr.OffsetOutOfRange if offset is below StartOffset or above EndOffset.
// The first batch may start before offset (a consumer skips those records).
// One call returns batches of one segment only. The buffer is fresh. Every
// batch returned has passed its CRC check; a batch that fails it is never
// returned (kerr.CorruptMessage if it is the first one).
func (l *Log) Read(offset int64, maxBytes int, upTo int64) ([]byte, error) {
	l.mu.RLock()
	if l.shut {
		l.mu.RUnlock()
		return nil, ErrClosed
	}
	if offset < l.start || offset > l.end {
		start, end := l.start, l.end
		l.mu.RUnlock()
		return nil, fmt.Errorf("log: offset %d not in [%d, %d]: %w", offset, start, end, kerr.OffsetOutOfRange)
	}
	upTo = min(upTo, l.end)
	if offset >= upTo {
		l.mu.RUnlock()
		return nil, nil
	}
	v := l.viewLocked(l.findLocked(offset))
	l.mu.RUnlock()
	for {
		out, more, err := v.read(offset, maxBytes, upTo)
		base := v.seg.base
		v.seg.release()
		if err != nil || !more {
			return out, err
		}
		// The segment ends before offset (a compaction gap): go on with
		// the next one.
		l.mu.RLock()
		i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > base })
		if i == len(l.segs) || l.segs[i].base >= upTo || l.shut {
			l.mu.RUnlock()
			return nil, nil
		}
		v = l.viewLocked(i)
		l.mu.RUnlock()
	}
}

// read is Read within one segment; more reports that the segment holds no
// batch at or after offset.
func (v view) read(offset int64, maxBytes int, upTo int64) (out []byte, more bool, err error) {
	pos, h, found, err := v.locate(offset)
	if err != nil || !found {
		return nil, !found && err == nil, err
	}
	if h.LastOffset() >= upTo {
		return nil, false, nil
	}
	want := min(max(int64(maxBytes), int64(h.Size())), v.size-pos)
	buf := make([]byte, want)
	n, err := v.seg.f.ReadAt(buf, pos)
	if n < h.Size() {
		return nil, false, fmt.Errorf("log: read %s at %d: %v: %w", v.seg.path, pos, err, kerr.KafkaStorageError)
	}
	buf = buf[:n]
	// Every batch is CRC-checked on its way out (CRC-32C runs at many GB/s,
	// far above what a disk or a network delivers): after a clean shutdown
	// Open trusts the files, so this is what keeps bit rot from reaching a
	// consumer. It also catches a concurrent Truncate rewriting the bytes.
	k := 0
	var bad error
	prevNext := int64(math.MinInt64)
	for k+batch.HeaderSize <= len(buf) {
		h, err := batch.ParseHeader(buf[k:])
		if err != nil || k+h.Size() > len(buf) || h.LastOffset() >= upTo || h.BaseOffset < prevNext {
			break
		}
		prevNext = h.NextOffset()
		if _, _, err := batch.Verify(buf[k:]); err != nil {
			bad = err
			break
		}
		k += h.Size()
	}
	if k == 0 {
		if bad != nil {
			return nil, false, fmt.Errorf("log: %s at %d: %w: %w", v.seg.path, pos, kerr.CorruptMessage, bad)
		}
		return nil, false, fmt.Errorf("log: %s at %d: batch changed under the reader: %w", v.seg.path, pos, kerr.KafkaStorageError)
	}
	return buf[:k:k], false, nil
}

// OffsetForTime returns the first offset at or after StartOffset whose
// record timestamp is >= ts, with that timestamp, or (-1, -1, nil) if no
// record is that recent. It decodes (and decompresses) only the batch that
// holds the answer.
func (l *Log) OffsetForTime(ts int64) (offset int64, recordTS int64, err error) {
	l.mu.RLock()
	if l.shut {
		l.mu.RUnlock()
		return -1, -1, ErrClosed
	}
	start := l.start
	vs := l.viewsLocked(l.findLocked(start))
	l.mu.RUnlock()
	defer releaseViews(vs)
	for _, v := range vs {
		if v.maxTS < ts {
			continue
		}
		pos, rel := lookupTime(v.entries, ts)
		r := newReader(v.seg.f, v.size, 64<<10)
		if pos > 0 {
			if h, err := r.header(pos); err != nil || h.BaseOffset != v.seg.base+rel {
				pos = 0 // a bad index entry costs a scan, never a wrong answer
			}
		}
		for pos < v.size {
			h, err := r.header(pos)
			if err != nil {
				return -1, -1, fmt.Errorf("log: %s at %d: %v: %w", v.seg.path, pos, err, kerr.KafkaStorageError)
			}
			if h.MaxTimestamp >= ts && h.LastOffset() >= start {
				b, err := r.at(pos, h.Size())
				if err != nil {
					return -1, -1, fmt.Errorf("log: %s at %d: %v: %w", v.seg.path, pos, err, kerr.KafkaStorageError)
				}
				recs, err := batch.Records(b)
				if err != nil {
					return -1, -1, fmt.Errorf("log: %s at %d: %v: %w", v.seg.path, pos, err, kerr.CorruptMessage)
				}
				for _, rec := range recs {
					if rec.Timestamp >= ts && rec.Offset >= start {
						return rec.Offset, rec.Timestamp, nil
					}
				}
			}
			pos += int64(h.Size())
		}
	}
	return -1, -1, nil
}

// ScanHeaders calls fn with the header of every batch from the one that
// holds from (or StartOffset, if later) to the end of the log, in order. It
// reads only headers. An error from fn stops the scan and is returned.
func (l *Log) ScanHeaders(from int64, fn func(h batch.Header) error) error {
	l.mu.RLock()
	if l.shut {
		l.mu.RUnlock()
		return ErrClosed
	}
	from = max(from, l.start)
	vs := l.viewsLocked(l.findLocked(from))
	l.mu.RUnlock()
	defer releaseViews(vs)
	for _, v := range vs {
		pos, _, found, err := v.locate(from)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		r := newReader(v.seg.f, v.size, 64<<10)
		for pos < v.size {
			h, err := r.header(pos)
			if err != nil {
				return fmt.Errorf("log: %s at %d: %v: %w", v.seg.path, pos, err, kerr.KafkaStorageError)
			}
			if err := fn(h); err != nil {
				return err
			}
			pos += int64(h.Size())
		}
	}
	return nil
}
