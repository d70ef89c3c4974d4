package group

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
)

// journalName is the offsets journal inside Config.Dir.
const journalName = "offsets.journal"

// Compaction thresholds: the journal is rewritten when it holds more than
// twice its live size plus the slack, so a small live set is not rewritten
// on every few commits. Close uses compactSlackClose: any real garbage.
const (
	compactSlackOpen    = 64 << 10
	compactSlackRuntime = 4 << 20
	compactSlackClose   = 4 << 10
	// snapshotFrameRecords bounds the records of one frame in a snapshot.
	snapshotFrameRecords = 1024
)

// offsetEntry is one committed offset and when it was committed (Unix ms).
type offsetEntry struct {
	OffsetCommit
	commitMs int64
}

// storeGroup is what the store knows about one group.
type storeGroup struct {
	protocolType string
	offsets      map[TopicPartition]offsetEntry
}

// writeReq is one frame waiting for the flusher.
type writeReq struct {
	recs []record
	// restore replaces the whole state with recs (replayed from the
	// replicated log) instead of appending them.
	restore bool
	done    chan error // buffered; receives the outcome once
}

// store is the durable committed-offsets store: an in-memory map replayed
// from, and kept in step with, the append-only journal.
//
// Writers queue frames; one owned flusher goroutine writes everything queued
// with a single fsync (group commit) and only then applies the records to
// the map, in journal order, so a reader never sees an offset that a crash
// could take back and the map always equals a replay of the journal.
//
// s.mu guards the map, the queue and the flags. The file (f, size, buf) is
// owned by the flusher while it runs and by openStore/close otherwise.
type store struct {
	dir  string
	path string
	log  *slog.Logger

	mu     sync.Mutex
	groups map[string]*storeGroup
	live   int64 // estimated size of a compacted journal
	queue  []*writeReq
	closed bool
	broken error // a failed fsync: the file state is unknown, refuse writes

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup

	f    *os.File
	size int64
	buf  []byte

	runtimeSlack int64 // compactSlackRuntime; tests lower it

	replicate func([]Entry) error // Config.Replicate
}

// openStore replays the journal in dir, cutting off a torn tail, compacts
// it when it is mostly garbage, and starts the flusher.
func openStore(dir string, log *slog.Logger) (*store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("group: offsets store: %w", err)
	}
	s := &store{
		dir:    dir,
		path:   filepath.Join(dir, journalName),
		log:    log,
		groups: map[string]*storeGroup{},
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),

		runtimeSlack: compactSlackRuntime,
	}
	_ = os.Remove(s.path + ".tmp") // a compaction that crashed before its rename

	data, err := os.ReadFile(s.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("group: offsets store: %w", err)
	}
	frames, good, derr := decodeJournal(data)
	if errors.Is(derr, errMagic) {
		return nil, fmt.Errorf("group: offsets store %s: %w", s.path, derr)
	}
	if derr != nil {
		s.log.Warn("group: truncating torn offsets journal tail",
			"path", s.path, "good_bytes", good, "file_bytes", len(data), "reason", derr)
	}
	for _, recs := range frames {
		for i := range recs {
			s.applyLocked(&recs[i])
		}
	}

	created := errors.Is(err, os.ErrNotExist)
	if s.f, err = os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return nil, fmt.Errorf("group: offsets store: %w", err)
	}
	if err := s.repairTail(data, good, created); err != nil {
		s.f.Close()
		return nil, err
	}
	if s.size > 2*s.live+compactSlackOpen {
		if err := s.compact(); err != nil {
			// The old journal is intact; run on it and try again at Close.
			s.log.Warn("group: compacting offsets journal", "err", err)
		}
	}
	s.wg.Add(1)
	go s.flusher()
	return s, nil
}

// repairTail makes the file end at the last good frame, writing the magic
// into a new or torn-at-birth file.
func (s *store) repairTail(data []byte, good int, created bool) error {
	wrap := func(err error) error { return fmt.Errorf("group: offsets store: repair %s: %w", s.path, err) }
	if good < len(journalMagic) {
		if err := s.f.Truncate(0); err != nil {
			return wrap(err)
		}
		if _, err := s.f.WriteAt([]byte(journalMagic), 0); err != nil {
			return wrap(err)
		}
		if err := s.f.Sync(); err != nil {
			return wrap(err)
		}
		s.size = int64(len(journalMagic))
		if created {
			return syncDir(s.dir)
		}
		return nil
	}
	s.size = int64(good)
	if good < len(data) {
		if err := s.f.Truncate(int64(good)); err != nil {
			return wrap(err)
		}
		if err := s.f.Sync(); err != nil {
			return wrap(err)
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("group: offsets store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("group: offsets store: sync dir: %w", err)
	}
	return nil
}

// write appends recs as one frame and returns once it is durable and
// applied. It does not hold the coordinator's lock.
func (s *store) write(recs []record) error {
	if len(recs) == 0 {
		return nil
	}
	req := &writeReq{recs: recs, done: make(chan error, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.broken != nil {
		err := s.broken
		s.mu.Unlock()
		return err
	}
	s.queue = append(s.queue, req)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return <-req.done
}

// flusher is the store's one goroutine: it writes queued frames, one fsync
// per round, until close.
func (s *store) flusher() {
	defer s.wg.Done()
	for {
		select {
		case <-s.kick:
		case <-s.stop:
			// close set s.closed before stop, so nothing queues after this
			// drain.
			s.drain()
			return
		}
		s.drain()
	}
}

func (s *store) drain() {
	for {
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		s.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		s.flush(batch)
	}
}

// flush writes batch with one fsync, applies it and answers its writers.
func (s *store) flush(batch []*writeReq) {
	if len(batch) > 0 && batch[0].restore {
		batch[0].done <- s.restore(batch[0].recs)
		s.flush(batch[1:])
		return
	}
	for i, req := range batch {
		if req.restore {
			// Restores run alone, in queue order.
			s.flush(batch[:i])
			s.flush(batch[i:])
			return
		}
	}
	if len(batch) == 0 {
		return
	}
	s.mu.Lock()
	err := s.broken
	s.mu.Unlock()
	if err == nil && s.replicate != nil {
		var entries []Entry
		for _, req := range batch {
			for i := range req.recs {
				entries = append(entries, entryOf(&req.recs[i]))
			}
		}
		err = s.replicate(entries)
	}
	if err == nil {
		err = s.appendFrames(batch)
	}
	if err == nil {
		s.mu.Lock()
		for _, req := range batch {
			for i := range req.recs {
				s.applyLocked(&req.recs[i])
			}
		}
		s.mu.Unlock()
	}
	for _, req := range batch {
		req.done <- err
	}
	if err == nil && s.size > 2*s.live+s.runtimeSlack {
		if cerr := s.compact(); cerr != nil {
			s.log.Warn("group: compacting offsets journal", "err", cerr)
		}
	}
}

// restore replaces the state with a replay of recs and rewrites the
// journal to match. It runs on the flusher.
func (s *store) restore(recs []record) error {
	s.mu.Lock()
	s.groups = map[string]*storeGroup{}
	s.live = 0
	for i := range recs {
		s.applyLocked(&recs[i])
	}
	s.mu.Unlock()
	return s.compact()
}

// appendFrames writes one frame per request after the good end of the file
// and fsyncs. A failed write is cut off again so the next frame does not
// land behind garbage; a failed fsync leaves the file in an unknown state
// and breaks the store until restart.
func (s *store) appendFrames(batch []*writeReq) error {
	buf := s.buf[:0]
	for _, req := range batch {
		buf = appendFrame(buf, req.recs)
	}
	s.buf = buf
	if cap(s.buf) > 1<<20 {
		s.buf = nil // do not pin a burst's buffer
	}
	if _, err := s.f.WriteAt(buf, s.size); err != nil {
		werr := fmt.Errorf("group: write offsets journal: %w: %w", kerr.CoordinatorNotAvailable, err)
		if terr := s.f.Truncate(s.size); terr != nil {
			s.breakWith(fmt.Errorf("group: offsets journal unusable after failed write: %w: %w", kerr.CoordinatorNotAvailable, terr))
		}
		return werr
	}
	if err := s.f.Sync(); err != nil {
		err = fmt.Errorf("group: fsync offsets journal: %w: %w", kerr.CoordinatorNotAvailable, err)
		s.breakWith(err)
		return err
	}
	s.size += int64(len(buf))
	return nil
}

func (s *store) breakWith(err error) {
	s.log.Error("group: offsets journal broken; commits fail until restart", "err", err)
	s.mu.Lock()
	if s.broken == nil {
		s.broken = err
	}
	s.mu.Unlock()
}

// compact rewrites the live state to a temporary file and renames it over
// the journal. The caller owns the file (flusher, Open or Close).
func (s *store) compact() error {
	s.mu.Lock()
	buf := s.snapshotLocked()
	s.mu.Unlock()

	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if _, err := f.Write(buf); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fail(err)
	}
	// From here the new file is the journal; its handle stays open for
	// appends.
	old := s.f
	s.f, s.size = f, int64(len(buf))
	old.Close()
	if err := syncDir(s.dir); err != nil {
		return err
	}
	s.log.Debug("group: compacted offsets journal", "path", s.path, "bytes", len(buf))
	return nil
}

// snapshotLocked encodes the live state as a journal, groups and partitions
// sorted so equal states give equal files.
func (s *store) snapshotLocked() []byte {
	buf := make([]byte, 0, int64(len(journalMagic))+s.live+int64(frameHeaderSize+8)*int64(1+len(s.groups)))
	buf = append(buf, journalMagic...)
	var recs []record
	flushRecs := func() {
		if len(recs) > 0 {
			buf = appendFrame(buf, recs)
			recs = recs[:0]
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.groups)) {
		g := s.groups[name]
		if g.protocolType != "" {
			recs = append(recs, record{kind: recGroupType, group: name, metadata: g.protocolType})
		}
		tps := slices.SortedFunc(maps.Keys(g.offsets), compareTP)
		for _, tp := range tps {
			e := g.offsets[tp]
			recs = append(recs, record{kind: recCommit, group: name, topic: tp.Topic, partition: tp.Partition,
				offset: e.Offset, epoch: e.LeaderEpoch, metadata: e.Metadata, time: e.commitMs})
			if len(recs) == snapshotFrameRecords {
				flushRecs()
			}
		}
	}
	flushRecs()
	return buf
}

func compareTP(a, b TopicPartition) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

// close stops the flusher after it wrote what is queued, compacts when the
// journal holds garbage and closes the file.
func (s *store) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()

	s.mu.Lock()
	broken := s.broken
	s.mu.Unlock()
	var err error
	if broken == nil && s.size > 2*s.live+compactSlackClose {
		if cerr := s.compact(); cerr != nil {
			s.log.Warn("group: compacting offsets journal", "err", cerr)
		}
	}
	if cerr := s.f.Close(); cerr != nil {
		err = fmt.Errorf("group: offsets store: %w", cerr)
	}
	return err
}

// applyLocked applies one record to the map, keeping the live estimate.
// Replay and the flusher both use it, so the map equals a replay.
func (s *store) applyLocked(r *record) {
	switch r.kind {
	case recCommit:
		g := s.groupLocked(r.group)
		tp := TopicPartition{Topic: r.topic, Partition: r.partition}
		if old, ok := g.offsets[tp]; ok {
			s.live -= commitSize(r.group, tp, old)
		}
		e := offsetEntry{OffsetCommit: OffsetCommit{Offset: r.offset, LeaderEpoch: r.epoch, Metadata: r.metadata}, commitMs: r.time}
		g.offsets[tp] = e
		s.live += commitSize(r.group, tp, e)
	case recDelete:
		if g := s.groups[r.group]; g != nil {
			tp := TopicPartition{Topic: r.topic, Partition: r.partition}
			if old, ok := g.offsets[tp]; ok {
				s.live -= commitSize(r.group, tp, old)
				delete(g.offsets, tp)
			}
			s.dropIfEmptyLocked(r.group, g)
		}
	case recExpire:
		if g := s.groups[r.group]; g != nil {
			for tp, e := range g.offsets {
				if e.commitMs <= r.time {
					s.live -= commitSize(r.group, tp, e)
					delete(g.offsets, tp)
				}
			}
			s.dropIfEmptyLocked(r.group, g)
		}
	case recDropTopic:
		for name, g := range s.groups {
			for tp, e := range g.offsets {
				if tp.Topic == r.topic {
					s.live -= commitSize(name, tp, e)
					delete(g.offsets, tp)
				}
			}
			s.dropIfEmptyLocked(name, g)
		}
	case recDeleteGroup:
		if g := s.groups[r.group]; g != nil {
			for tp, e := range g.offsets {
				s.live -= commitSize(r.group, tp, e)
			}
			g.offsets = nil
			s.dropIfEmptyLocked(r.group, g)
		}
	case recGroupType:
		g := s.groupLocked(r.group)
		s.live -= typeSize(r.group, g.protocolType)
		g.protocolType = r.metadata
		s.live += typeSize(r.group, g.protocolType)
	}
}

func typeSize(group, protocolType string) int64 {
	if protocolType == "" {
		return 0
	}
	return 1 + stringLen(group) + stringLen(protocolType)
}

func (s *store) groupLocked(name string) *storeGroup {
	g := s.groups[name]
	if g == nil {
		g = &storeGroup{offsets: map[TopicPartition]offsetEntry{}}
		s.groups[name] = g
	}
	return g
}

// dropIfEmptyLocked forgets a group with no offsets left; its protocol type
// goes with it (a compaction would not keep it either).
func (s *store) dropIfEmptyLocked(name string, g *storeGroup) {
	if len(g.offsets) == 0 {
		s.live -= typeSize(name, g.protocolType)
		delete(s.groups, name)
	}
}

// fetch returns the committed offsets of group for tps, or all of them when
// tps is nil.
func (s *store) fetch(group string, tps []TopicPartition) map[TopicPartition]OffsetCommit {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[TopicPartition]OffsetCommit{}
	g := s.groups[group]
	if g == nil {
		return out
	}
	if tps == nil {
		for tp, e := range g.offsets {
			out[tp] = e.OffsetCommit
		}
		return out
	}
	for _, tp := range tps {
		if e, ok := g.offsets[tp]; ok {
			out[tp] = e.OffsetCommit
		}
	}
	return out
}

// groupInfo reports whether the store knows group and its protocol type.
func (s *store) groupInfo(group string) (protocolType string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[group]
	if g == nil {
		return "", false
	}
	return g.protocolType, true
}

// groupTypes returns every group with offsets and its protocol type.
func (s *store) groupTypes() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.groups))
	for name, g := range s.groups {
		out[name] = g.protocolType
	}
	return out
}

// typeRecord returns a recGroupType record when the stored protocol
// type of group differs from protocolType, to be written with a commit.
func (s *store) typeRecord(group, protocolType string) (record, bool) {
	if protocolType == "" {
		return record{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.groups[group]; g != nil && g.protocolType == protocolType {
		return record{}, false
	}
	return record{kind: recGroupType, group: group, metadata: protocolType}, true
}

// expirable reports whether group has an offset committed at or before
// cutoffMs.
func (s *store) expirable(group string, cutoffMs int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[group]
	if g == nil {
		return false
	}
	for _, e := range g.offsets {
		if e.commitMs <= cutoffMs {
			return true
		}
	}
	return false
}
