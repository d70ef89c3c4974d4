package log

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/internal/batch"
)

// fillSegments appends one 10-record batch per segment (SegmentBytes is
// tiny so every append rolls), batch i with timestamps 1000*i.
func fillSegments(t *testing.T, dir string, cfg Config, n int) (*Log, int64) {
	cfg.SegmentBytes = 100
	l := openT(t, dir, cfg)
	var segSize int64
	for i := 0; i < n; i++ {
		recs := make([]batch.Record, 10)
		for j := range recs {
			recs[j] = batch.Record{Timestamp: int64(1000 * (i + 1)), Value: []byte(fmt.Sprint(i, j))}
		}
		b := build(t, batch.None, recs)
		segSize = int64(len(b))
		if _, _, err := l.Append(b, 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(segFiles(t, dir, ".log")); got != n {
		t.Fatalf("%d segments, want %d", got, n)
	}
	return l, segSize
}

func TestRetain(t *testing.T) {
	tests := []struct {
		name      string
		bytes     int64 // in segments, -1 unlimited
		age       time.Duration
		now       int64 // ms
		wantDel   int
		wantStart int64
	}{
		{"unlimited", -1, 0, 1e9, 0, 0},
		{"bytes keep 3", 3, 0, 0, 2, 20},         // 5 segments, keep the newest 3 (active counts)
		{"bytes keep 1", 1, 0, 0, 4, 40},         // never the active one
		{"bytes zero", 0, 0, 0, 4, 40},           // still never the active one
		{"age", -1, time.Second, 3500, 2, 20},    // segments with max ts 1000, 2000 are older than 2500
		{"age all", -1, time.Second, 1e9, 4, 40}, // all closed
		{"age none", -1, time.Second, 1500, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig()
			cfg.RetentionAge = tc.age
			l, segSize := fillSegments(t, dir, cfg, 5)
			cfg.SegmentBytes = 100
			if tc.bytes >= 0 {
				cfg.RetentionBytes = tc.bytes * segSize
			}
			if err := l.SetConfig(cfg); err != nil {
				t.Fatal(err)
			}
			n, err := l.Retain(time.UnixMilli(tc.now))
			if err != nil || n != tc.wantDel {
				t.Fatalf("Retain = %d, %v; want %d", n, err, tc.wantDel)
			}
			if l.StartOffset() != tc.wantStart {
				t.Fatalf("start %d, want %d", l.StartOffset(), tc.wantStart)
			}
			if got := len(segFiles(t, dir, ".log")); got != 5-tc.wantDel {
				t.Fatalf("%d segment files left", got)
			}
			if _, err := l.Read(tc.wantStart-1, 100, 50); tc.wantStart > 0 && !errors.Is(err, kerr.OffsetOutOfRange) {
				t.Fatalf("read below start: %v", err)
			}
			got := readAll(t, l, tc.wantStart, 1<<20)
			if len(got) != int(50-tc.wantStart) {
				t.Fatalf("%d records left", len(got))
			}
			for i, r := range got {
				want := tc.wantStart + int64(i)
				if r.Offset != want || string(r.Value) != fmt.Sprint(want/10, want%10) {
					t.Fatalf("record %d: offset %d value %q", i, r.Offset, r.Value)
				}
			}
			// Start offset persisted.
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l2 := openT(t, dir, cfg)
			if l2.StartOffset() != tc.wantStart || l2.EndOffset() != 50 {
				t.Fatalf("after reopen: start %d end %d", l2.StartOffset(), l2.EndOffset())
			}
		})
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	dir := t.TempDir()
	l, _ := fillSegments(t, dir, testConfig(), 5)
	if err := l.DeleteRecordsBefore(51); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("past end: %v", err)
	}
	if err := l.DeleteRecordsBefore(25); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != 25 {
		t.Fatalf("start %d", l.StartOffset())
	}
	// Segments 0 and 10 are wholly below 25 and gone; 20 holds 25.
	if got := len(segFiles(t, dir, ".log")); got != 3 {
		t.Fatalf("%d segments", got)
	}
	if err := l.DeleteRecordsBefore(3); err != nil || l.StartOffset() != 25 {
		t.Fatalf("going back: %v, start %d", err, l.StartOffset())
	}
	got := readAll(t, l, 25, 1<<20)
	if len(got) != 25 || got[0].Offset != 25 {
		t.Fatalf("got %d records from %d", len(got), got[0].Offset)
	}
	if _, err := l.Read(24, 100, 50); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	// Crash-like reopen keeps the start offset.
	img := copyDir(t, dir)
	l2 := openT(t, img, testConfig())
	if l2.StartOffset() != 25 || l2.EndOffset() != 50 {
		t.Fatalf("after reopen: start %d end %d", l2.StartOffset(), l2.EndOffset())
	}
	// Up to the end, inside the active segment.
	if err := l2.DeleteRecordsBefore(50); err != nil || l2.StartOffset() != 50 {
		t.Fatalf("to end: %v, start %d", err, l2.StartOffset())
	}
	if data, err := l2.Read(50, 100, 50); err != nil || data != nil {
		t.Fatalf("read at end: %v, %d bytes", err, len(data))
	}
	if _, err := os.Stat(filepath.Join(img, startCheckpointFile)); err != nil {
		t.Fatal(err)
	}
}

// TestMaintenanceUnderLoad runs retention, compaction, DeleteRecordsBefore,
// OffsetForTime and ScanHeaders while a writer appends and readers chase
// it; readers must only ever see valid batches with rising offsets.
func TestMaintenanceUnderLoad(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	cfg.RetentionBytes = 8 << 10
	cfg.Flush = FlushOS
	l := openT(t, t.TempDir(), cfg)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := int64(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				data, err := l.Read(next, 2048, l.EndOffset())
				if errors.Is(err, kerr.OffsetOutOfRange) {
					next = l.StartOffset()
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if err := batch.Each(data, func(h batch.Header, _ []byte) error {
					if h.LastOffset() < next {
						return fmt.Errorf("batch %d..%d before %d", h.BaseOffset, h.LastOffset(), next)
					}
					next = h.NextOffset()
					return nil
				}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := l.Retain(time.Now()); err != nil {
				t.Error(err)
			}
			if err := l.Compact(time.Now()); err != nil {
				t.Error(err)
			}
			if _, _, err := l.OffsetForTime(int64(i)); err != nil {
				t.Error(err)
			}
			if err := l.ScanHeaders(0, func(batch.Header) error { return nil }); err != nil {
				t.Error(err)
			}
			if start := l.StartOffset(); i%10 == 0 && start < l.EndOffset() {
				if err := l.DeleteRecordsBefore(start + 1); err != nil {
					t.Error(err)
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for i := 0; i < 800; i++ {
		if _, _, err := l.Append(kv(t, batch.None, int64(i), fmt.Sprint("k", i%7), fmt.Sprint(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if l.Size() > 16<<10 {
		t.Fatalf("retention did not keep up: %d bytes", l.Size())
	}
}
