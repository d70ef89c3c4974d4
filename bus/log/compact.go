package log

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/internal/batch"
)

// Compact applies cleanup.policy=compact to the closed segments (never the
// active one, whose records therefore do not yet supersede older ones):
//
//   - for each key only the record with the highest offset survives;
//   - records with a null key are kept;
//   - a tombstone (non-null key, null value) that is the newest record of
//     its key survives until DeleteRetention has passed since compaction
//     first saw the segment that holds it (those first-seen times are kept
//     in the "cleaner-seen" file, so a restart does not reset them);
//   - order and offsets never change: a batch that lost records is
//     re-encoded with the same codec, base offset, last offset delta,
//     timestamps and producer id/epoch/base sequence, and each record keeps
//     its offset delta; a batch that lost every record is dropped, except
//     the last batch of each producer id, kept empty so that producer state
//     survives a restart; control batches are kept as they are;
//   - a segment left with no batch is deleted.
//
// Each changed segment is written to "<base>.log.cleaned", fsynced,
// renamed to "<base>.log.swap" (the commit point), its index files removed,
// and renamed over "<base>.log"; Open finishes or discards a swap a crash
// interrupted. The key map holds every key of the closed segments in
// memory. Readers are never blocked; appends wait only for the renames.
func (l *Log) Compact(now time.Time) error {
	l.compactMu.Lock()
	defer l.compactMu.Unlock()
	l.mu.RLock()
	if err := l.usableLocked(); err != nil {
		l.mu.RUnlock()
		return err
	}
	cfg := l.cfg
	vs := l.viewsLocked(0)
	l.mu.RUnlock()
	defer releaseViews(vs)
	vs = vs[:len(vs)-1] // not the active segment
	if len(vs) == 0 {
		return nil
	}

	nowMS := now.UnixMilli()
	present := map[int64]bool{}
	seenChanged := false
	for _, v := range vs {
		present[v.seg.base] = true
		if _, ok := l.seen[v.seg.base]; !ok {
			l.seen[v.seg.base] = nowMS
			seenChanged = true
		}
	}
	for b := range l.seen {
		if !present[b] {
			delete(l.seen, b)
			seenChanged = true
		}
	}
	if seenChanged {
		if err := writeSeen(l.dir, l.seen); err != nil {
			return err
		}
	}

	// Pass 1: the newest offset of every key, how many keyed records each
	// segment holds, and each producer's last batch.
	type last struct {
		off  int64
		tomb bool
	}
	latest := map[string]last{}
	keyed := make([]int, len(vs))
	lastOfProducer := map[int64]int64{}
	for i, v := range vs {
		err := v.each(func(h batch.Header, b []byte) error {
			if h.ProducerID >= 0 {
				lastOfProducer[h.ProducerID] = h.BaseOffset
			}
			if h.IsControl() {
				return nil
			}
			recs, err := batch.Records(b)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if r.Key != nil {
					latest[string(r.Key)] = last{r.Offset, r.Value == nil}
					keyed[i]++
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	// Which segments change: those holding a superseded record or a
	// tombstone past its horizon. Nothing is rewritten otherwise.
	newest := make([]int, len(vs))
	tombs := make([]int, len(vs))
	for _, k := range latest {
		i := sort.Search(len(vs), func(i int) bool { return vs[i].seg.base > k.off }) - 1
		newest[i]++
		if k.tomb {
			tombs[i]++
		}
	}
	for i, v := range vs {
		dropTombs := nowMS >= l.seen[v.seg.base]+cfg.DeleteRetention.Milliseconds()
		if keyed[i] == newest[i] && (!dropTombs || tombs[i] == 0) {
			continue
		}
		keep := func(r *batch.Record) bool {
			if r.Key == nil {
				return true
			}
			k := latest[string(r.Key)]
			return k.off == r.Offset && !(k.tomb && dropTombs)
		}
		if err := l.cleanSegment(v, keep, lastOfProducer, cfg.IndexIntervalBytes); err != nil {
			return err
		}
	}
	return nil
}

// each calls fn with every batch of v, CRC-verified. b is valid only
// during the call.
func (v view) each(fn func(h batch.Header, b []byte) error) error {
	r := newReader(v.seg.f, v.size, 1<<20)
	for pos := int64(0); pos < v.size; {
		h, err := r.header(pos)
		if err != nil {
			return fmt.Errorf("log: %s at %d: %v: %w", v.seg.path, pos, err, kerr.KafkaStorageError)
		}
		b, err := r.at(pos, h.Size())
		if err != nil {
			return fmt.Errorf("log: %s at %d: %v: %w", v.seg.path, pos, err, kerr.KafkaStorageError)
		}
		if _, _, err := batch.Verify(b); err != nil {
			return fmt.Errorf("log: %s at %d: %w: %w", v.seg.path, pos, kerr.CorruptMessage, err)
		}
		if err := fn(h, b); err != nil {
			return err
		}
		pos += int64(h.Size())
	}
	return nil
}

// cleanSegment writes the records of v that keep accepts to a cleaned copy
// and swaps it in.
func (l *Log) cleanSegment(v view, keep func(*batch.Record) bool, lastOfProducer map[int64]int64, interval int) error {
	base := v.seg.base
	tmp := segPath(l.dir, base, logSuffix+cleanedSuffix)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	fail := func(err error) error {
		_ = f.Close()
		_ = os.Remove(tmp)
		return err
	}
	w := bufio.NewWriterSize(f, int(min(v.size, 1<<20)))
	st := segState{next: base, maxTS: -1}
	err = v.each(func(h batch.Header, b []byte) error {
		out := b
		if !h.IsControl() {
			recs, err := batch.Records(b)
			if err != nil {
				return fmt.Errorf("log: %s batch %d: %w: %w", v.seg.path, h.BaseOffset, kerr.CorruptMessage, err)
			}
			kept := slices.DeleteFunc(slices.Clone(recs), func(r batch.Record) bool { return !keep(&r) })
			switch {
			case len(kept) == len(recs):
			case len(kept) == 0 && !(h.ProducerID >= 0 && lastOfProducer[h.ProducerID] == h.BaseOffset):
				return nil
			default:
				if out, err = batch.Rewrite(h, kept); err != nil {
					return err
				}
			}
		}
		oh, _ := batch.ParseHeader(out)
		st.observe(base, oh, st.size, interval)
		_, err := w.Write(out)
		return err
	})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = datasync(f)
	}
	if err != nil {
		return fail(err)
	}
	return l.swap(v, f, tmp, st)
}

// swap installs a cleaned segment in place of v.seg, unless retention
// or truncation changed that segment meanwhile. It takes appendMu (the
// caller holds compactMu).
func (l *Log) swap(v view, f *os.File, tmp string, st segState) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	old := v.seg
	l.mu.RLock()
	i := slices.Index(l.segs, old)
	ok := l.usableLocked() == nil && i >= 0 && i < len(l.segs)-1 && old.size == v.size
	l.mu.RUnlock()
	if !ok {
		_ = f.Close()
		_ = os.Remove(tmp)
		return nil
	}
	if st.size == 0 {
		_ = f.Close()
		_ = os.Remove(tmp)
		l.mu.Lock()
		l.segs = slices.Delete(slices.Clone(l.segs), i, i+1)
		l.mu.Unlock()
		l.removeSegments([]*segment{old})
		return nil
	}
	swap := segPath(l.dir, old.base, logSuffix+swapSuffix)
	if err := os.Rename(tmp, swap); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("log: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		_ = f.Close()
		return fmt.Errorf("log: %w", err)
	}
	// Past the commit point: a crash from here on is finished by Open.
	removeIndexes(l.dir, old.base)
	if err := os.Rename(swap, old.path); err != nil {
		_ = f.Close()
		return fmt.Errorf("log: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		l.logger.Warn("log: fsync dir after compaction swap", "dir", l.dir, "err", err)
	}
	ns := newSegment(l.dir, old.base, f)
	ns.segState = st
	ns.rollTS = old.rollTS
	if err := writeIndexes(l.dir, ns.base, st.entries); err != nil {
		ns.dirty = true
	}
	l.mu.Lock()
	segs := slices.Clone(l.segs)
	segs[i] = ns
	l.segs = segs
	l.mu.Unlock()
	old.release()
	return nil
}

// readSeen loads the compaction first-seen times; a missing or damaged
// file just restarts the tombstone clocks (keeping tombstones longer).
func readSeen(dir string) map[int64]int64 {
	m := map[int64]int64{}
	b, err := os.ReadFile(dir + string(os.PathSeparator) + cleanerSeenFile)
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		a, c, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		base, err1 := strconv.ParseInt(a, 10, 64)
		ms, err2 := strconv.ParseInt(c, 10, 64)
		if err1 == nil && err2 == nil {
			m[base] = ms
		}
	}
	return m
}

func writeSeen(dir string, m map[int64]int64) error {
	var sb strings.Builder
	for base, ms := range m {
		fmt.Fprintf(&sb, "%d %d\n", base, ms)
	}
	return writeFileAtomic(dir, cleanerSeenFile, []byte(sb.String()))
}
