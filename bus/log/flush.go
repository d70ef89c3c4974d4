package log

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// run is the Log's one goroutine: the flusher. Under FlushAlways it fsyncs
// when Sync kicks it; because the kick channel holds one token, every Sync
// that arrives while an fsync runs is served by the single next fsync
// (group commit). Under FlushInterval it fsyncs on a ticker. Close stops it
// and waits for it.
func (l *Log) run() {
	defer l.wg.Done()
	var ticker *time.Ticker
	var tick <-chan time.Time
	reset := func() {
		if ticker != nil {
			ticker.Stop()
			ticker, tick = nil, nil
		}
		l.mu.RLock()
		cfg := l.cfg
		l.mu.RUnlock()
		if cfg.Flush == FlushInterval {
			ticker = time.NewTicker(cfg.FlushInterval)
			tick = ticker.C
		}
	}
	reset()
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	for {
		select {
		case <-l.stop:
			return
		case <-l.kick:
			l.flush()
		case <-tick:
			l.flush()
		case <-l.reconf:
			reset()
		}
	}
}

// flush fsyncs the active segment and advances DurableOffset to the end
// offset seen before the fsync started.
//
// Why that is enough: end is published only after the bytes below it were
// written, and every segment but the active one was fsynced when it was
// rolled (under appendMu, before the new segment joined the list), so the
// captured segment holds everything below the captured end that is not yet
// durable. If Truncate runs during the fsync, the bytes below the captured
// end may have been replaced by unsynced ones, so truncGen makes us drop the
// result and let the next flush do it.
func (l *Log) flush() {
	l.mu.RLock()
	if l.closed || l.failed != nil || l.end <= l.durable {
		l.mu.RUnlock()
		return
	}
	target, gen, s := l.end, l.truncGen, l.segs[len(l.segs)-1]
	s.acquire()
	l.mu.RUnlock()
	err := datasync(s.f)
	s.release()
	if err != nil {
		l.fail(fmt.Errorf("log: fsync %s: %v: %w", s.path, err, kerr.KafkaStorageError))
		return
	}
	l.mu.Lock()
	if gen == l.truncGen && target > l.durable {
		l.durable = target
		l.wakeDurLocked()
		l.wakeLocked()
	}
	l.mu.Unlock()
}

// Sync returns once every record below offset is fsynced (offsets past
// EndOffset count as EndOffset). Under FlushAlways concurrent callers share
// fsyncs (see run); under FlushInterval and FlushOS it returns nil at once.
// It returns ctx's error if ctx ends first, the storage error if an fsync
// failed (kerr.KafkaStorageError), and ErrClosed if the log closed without
// making the records durable.
func (l *Log) Sync(ctx context.Context, offset int64) error {
	for {
		l.mu.RLock()
		policy, dur, end, failed, shut := l.cfg.Flush, l.durable, l.end, l.failed, l.shut
		l.durTaken.Store(true)
		ch := l.durCh
		l.mu.RUnlock()
		if policy == FlushAlways && dur >= min(offset, end) {
			return nil
		}
		if failed != nil {
			return failed
		}
		if policy != FlushAlways {
			return nil
		}
		if shut {
			return ErrClosed
		}
		select {
		case l.kick <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
