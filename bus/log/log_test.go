package log

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/internal/batch"
)

func TestAppendReadRoundTrip(t *testing.T) {
	forEachCodec(t, func(t *testing.T, c batch.Codec) {
		dir := t.TempDir()
		l := openT(t, dir, testConfig())
		rng := rand.New(rand.NewPCG(1, uint64(c)))
		var want []batch.Record
		ts := int64(1_700_000_000_000)
		for i := 0; i < 20; i++ {
			recs := genRecords(rng, 1+rng.IntN(80), ts)
			ts += 100
			want = append(want, appendRecs(t, l, c, recs)...)
		}
		if err := l.Sync(context.Background(), l.EndOffset()); err != nil {
			t.Fatal(err)
		}
		if got := l.DurableOffset(); got != l.EndOffset() {
			t.Fatalf("DurableOffset %d, EndOffset %d", got, l.EndOffset())
		}
		if n := len(segFiles(t, dir, ".log")); n < 2 && c == batch.None {
			t.Fatalf("expected several segments, got %d", n)
		}
		for _, maxBytes := range []int{1, 1 << 20} {
			sameRecords(t, readAll(t, l, 0, maxBytes), want)
		}
		// Reopen (clean) and crash-like reopen of a copy keep everything.
		img := copyDir(t, dir)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{dir, img} {
			l2 := openT(t, d, testConfig())
			if l2.EndOffset() != int64(len(want)) {
				t.Fatalf("%s: end %d, want %d", d, l2.EndOffset(), len(want))
			}
			sameRecords(t, readAll(t, l2, 0, 4096), want)
			// And it takes appends.
			more := appendRecs(t, l2, c, genRecords(rng, 3, ts))
			sameRecords(t, readAll(t, l2, more[0].Offset, 4096), more)
		}
	})
}

func TestAppendRejects(t *testing.T) {
	l := openT(t, t.TempDir(), testConfig())
	good := kv(t, batch.None, 1, "k", "v")
	bad := kv(t, batch.None, 1, "k", "v")
	bad[len(bad)-1] ^= 1
	cfg := testConfig()
	cfg.MaxBatchBytes = 200
	big := build(t, batch.None, []batch.Record{{Value: make([]byte, 300)}})
	tests := []struct {
		name string
		buf  []byte
		want error
	}{
		{"empty", nil, kerr.CorruptMessage},
		{"bad crc after good", append(append([]byte{}, good...), bad...), kerr.CorruptMessage},
		{"trailing garbage", append(append([]byte{}, good...), 1, 2, 3), kerr.CorruptMessage},
		{"too large", big, kerr.MessageTooLarge},
	}
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := l.Append(tc.buf, 0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			var ke *kerr.Error
			if !errors.As(err, &ke) {
				t.Fatalf("err %v is not a kerr.Error", err)
			}
			if l.EndOffset() != 0 || l.Size() != 0 {
				t.Fatalf("something was written: end %d size %d", l.EndOffset(), l.Size())
			}
		})
	}
}

func TestAppendAssignsOffsetsAndEpoch(t *testing.T) {
	l := openT(t, t.TempDir(), testConfig())
	b := append(kv(t, batch.None, 1, "a", "1", "b", "2"), kv(t, batch.Gzip, 1, "c", "3")...)
	first, last, err := l.Append(b, 7)
	if err != nil || first != 0 || last != 2 {
		t.Fatalf("Append = %d, %d, %v", first, last, err)
	}
	data, err := l.Read(0, 1<<20, l.EndOffset())
	if err != nil {
		t.Fatal(err)
	}
	var bases []int64
	if err := batch.Each(data, func(h batch.Header, _ []byte) error {
		if h.LeaderEpoch != 7 {
			t.Errorf("leader epoch %d", h.LeaderEpoch)
		}
		bases = append(bases, h.BaseOffset)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(bases) != 2 || bases[0] != 0 || bases[1] != 2 {
		t.Fatalf("bases %v", bases)
	}
}

// threeBatches appends batches of 10 records (offsets 0-9, 10-19, 20-29)
// and returns their sizes.
func threeBatches(t *testing.T, l *Log) []int {
	var sizes []int
	for i := 0; i < 3; i++ {
		recs := make([]batch.Record, 10)
		for j := range recs {
			recs[j] = batch.Record{Timestamp: int64(1000*(i+1) + j), Value: []byte("0123456789")}
		}
		b := build(t, batch.None, recs)
		sizes = append(sizes, len(b))
		if _, _, err := l.Append(b, 0); err != nil {
			t.Fatal(err)
		}
	}
	return sizes
}

func batchBases(t *testing.T, data []byte) []int64 {
	t.Helper()
	var out []int64
	if err := batch.Each(data, func(h batch.Header, _ []byte) error {
		out = append(out, h.BaseOffset)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReadSemantics(t *testing.T) {
	l := openT(t, t.TempDir(), testConfig())
	sizes := threeBatches(t, l)
	tests := []struct {
		name     string
		offset   int64
		maxBytes int
		upTo     int64
		want     []int64 // batch bases
		err      error
	}{
		{"from start, all", 0, 1 << 20, 30, []int64{0, 10, 20}, nil},
		{"mid batch", 15, 1 << 20, 30, []int64{10, 20}, nil},
		{"last record", 29, 1 << 20, 30, []int64{20}, nil},
		{"maxBytes below one batch still one", 0, 1, 30, []int64{0}, nil},
		{"maxBytes exactly two", 0, sizes[0] + sizes[1], 30, []int64{0, 10}, nil},
		{"maxBytes two and a bit", 0, sizes[0] + sizes[1] + 5, 30, []int64{0, 10}, nil},
		{"upTo cuts", 0, 1 << 20, 20, []int64{0, 10}, nil},
		{"upTo beyond end clamps", 0, 1 << 20, 1000, []int64{0, 10, 20}, nil},
		{"offset == upTo", 20, 1 << 20, 20, nil, nil},
		{"offset == end", 30, 1 << 20, 30, nil, nil},
		{"past end", 31, 1 << 20, 40, nil, kerr.OffsetOutOfRange},
		{"negative", -1, 1 << 20, 30, nil, kerr.OffsetOutOfRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := l.Read(tc.offset, tc.maxBytes, tc.upTo)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if tc.want == nil {
				if data != nil {
					t.Fatalf("got %d bytes, want nil", len(data))
				}
				return
			}
			got := batchBases(t, data)
			if len(got) != len(tc.want) {
				t.Fatalf("bases %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("bases %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestReadAcrossIndexEntries(t *testing.T) {
	forEachCodec(t, func(t *testing.T, c batch.Codec) {
		cfg := testConfig()
		cfg.IndexIntervalBytes = 100
		l := openT(t, t.TempDir(), cfg)
		rng := rand.New(rand.NewPCG(3, 3))
		var want []batch.Record
		for i := 0; i < 50; i++ {
			want = append(want, appendRecs(t, l, c, genRecords(rng, 1+rng.IntN(5), 1))...)
		}
		// Every offset, read alone, yields the batch that holds it first.
		for _, r := range want {
			data, err := l.Read(r.Offset, 1, l.EndOffset())
			if err != nil {
				t.Fatal(err)
			}
			h, _, err := batch.Verify(data)
			if err != nil || r.Offset < h.BaseOffset || r.Offset > h.LastOffset() || h.Size() != len(data) {
				t.Fatalf("offset %d: got batch %d..%d (%v)", r.Offset, h.BaseOffset, h.LastOffset(), err)
			}
		}
	})
}

func TestOffsetForTime(t *testing.T) {
	forEachCodec(t, func(t *testing.T, c batch.Codec) {
		cfg := testConfig()
		cfg.IndexIntervalBytes = 64
		cfg.SegmentBytes = 2048
		l := openT(t, t.TempDir(), cfg)
		// Timestamps 1000, 1010, ..., with one batch out of order.
		for i := 0; i < 60; i++ {
			ts := int64(1000 + 10*i)
			if i == 50 {
				ts = 500
			}
			appendRecs(t, l, c, []batch.Record{{Timestamp: ts, Value: []byte("xx")}, {Timestamp: ts + 5, Value: []byte("y")}})
		}
		tests := []struct{ ts, off, rts int64 }{
			{0, 0, 1000},
			{1000, 0, 1000},
			{1001, 1, 1005},
			{1005, 1, 1005},
			{1006, 2, 1010},
			{1495, 99, 1495},
			{1496, 102, 1510},
			{1595, 119, 1595},
			{1596, -1, -1},
		}
		for _, tc := range tests {
			off, rts, err := l.OffsetForTime(tc.ts)
			if err != nil || off != tc.off || rts != tc.rts {
				t.Errorf("OffsetForTime(%d) = %d, %d, %v; want %d, %d", tc.ts, off, rts, err, tc.off, tc.rts)
			}
		}
		// Start offset hides earlier records.
		if err := l.DeleteRecordsBefore(7); err != nil {
			t.Fatal(err)
		}
		if off, _, _ := l.OffsetForTime(0); off != 7 {
			t.Errorf("after DeleteRecordsBefore(7): OffsetForTime(0) = %d", off)
		}
	})
}

func TestRollBySizeAndAge(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig()
		cfg.SegmentBytes = 1000
		l := openT(t, dir, cfg)
		b := kv(t, batch.None, 1, "k", string(make([]byte, 300)))
		for i := 0; i < 10; i++ {
			if _, _, err := l.Append(append([]byte{}, b...), 0); err != nil {
				t.Fatal(err)
			}
		}
		// 3 batches (~1080 bytes) would exceed 1000: two per segment.
		logs := segFiles(t, dir, ".log")
		if len(logs) != 5 {
			t.Fatalf("%d segments, want 5: %v", len(logs), logs)
		}
		for i, p := range logs {
			if want := filepath.Join(dir, []string{"00000000000000000000", "00000000000000000002", "00000000000000000004", "00000000000000000006", "00000000000000000008"}[i]+".log"); p != want {
				t.Fatalf("segment %d is %s, want %s", i, p, want)
			}
		}
		if len(readAll(t, l, 0, 100)) != 10 {
			t.Fatal("lost records")
		}
	})
	t.Run("age", func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig()
		cfg.SegmentAge = time.Hour
		l := openT(t, dir, cfg)
		var mu sync.Mutex
		now := time.Unix(1_700_000_000, 0)
		l.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
		app := func() {
			if _, _, err := l.Append(kv(t, batch.None, 1, "k", "v"), 0); err != nil {
				t.Fatal(err)
			}
		}
		app()
		advance(59 * time.Minute)
		app()
		if n := len(segFiles(t, dir, ".log")); n != 1 {
			t.Fatalf("%d segments before an hour", n)
		}
		advance(time.Minute)
		app()
		if n := len(segFiles(t, dir, ".log")); n != 2 {
			t.Fatalf("%d segments after an hour, want 2", n)
		}
		app()
		if n := len(segFiles(t, dir, ".log")); n != 2 {
			t.Fatalf("%d segments, want 2 (new segment is young)", n)
		}
	})
}

func TestIndexRebuild(t *testing.T) {
	damage := map[string]func(t *testing.T, path string){
		"delete": func(t *testing.T, p string) { _ = os.Remove(p) },
		"truncate odd": func(t *testing.T, p string) {
			if err := os.Truncate(p, 5); err != nil {
				t.Fatal(err)
			}
		},
		"garbage": func(t *testing.T, p string) {
			st, _ := os.Stat(p)
			b := make([]byte, st.Size())
			for i := range b {
				b[i] = byte(i * 7)
			}
			_ = os.WriteFile(p, b, 0o644)
		},
		"shifted positions": func(t *testing.T, p string) {
			b, _ := os.ReadFile(p)
			for i := 0; i+8 <= len(b); i += 8 {
				b[i+7] += 3 // positions (offset index) / relative offsets (time index) off by 3
			}
			_ = os.WriteFile(p, b, 0o644)
		},
		"empty": func(t *testing.T, p string) { _ = os.WriteFile(p, nil, 0o644) },
	}
	for name, fn := range damage {
		for _, suffix := range []string{".index", ".timeindex"} {
			t.Run(name+suffix, func(t *testing.T) {
				dir := t.TempDir()
				cfg := testConfig()
				cfg.IndexIntervalBytes = 128
				cfg.SegmentBytes = 2048
				l := openT(t, dir, cfg)
				rng := rand.New(rand.NewPCG(5, 5))
				var want []batch.Record
				for i := 0; i < 100; i++ {
					want = append(want, appendRecs(t, l, batch.Snappy, genRecords(rng, 3, int64(1000+10*i)))...)
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				files := segFiles(t, dir, suffix)
				if len(files) < 3 {
					t.Fatalf("only %d index files", len(files))
				}
				sizes := map[string]int64{}
				for _, p := range segFiles(t, dir, ".index") {
					st, _ := os.Stat(p)
					sizes[p] = st.Size()
				}
				for _, p := range files {
					fn(t, p)
				}
				l2 := openT(t, dir, cfg)
				sameRecords(t, readAll(t, l2, 0, 1), want)
				for _, r := range want {
					data, err := l2.Read(r.Offset, 1, l2.EndOffset())
					if err != nil {
						t.Fatal(err)
					}
					h, _, err := batch.Verify(data)
					if err != nil || r.Offset < h.BaseOffset || r.Offset > h.LastOffset() {
						t.Fatalf("offset %d: got batch %d..%d (%v)", r.Offset, h.BaseOffset, h.LastOffset(), err)
					}
					off, _, err := l2.OffsetForTime(r.Timestamp)
					if err != nil || off > r.Offset {
						t.Fatalf("OffsetForTime(%d) = %d, %v; want <= %d", r.Timestamp, off, err, r.Offset)
					}
				}
				if err := l2.Close(); err != nil {
					t.Fatal(err)
				}
				for p, size := range sizes {
					st, err := os.Stat(p)
					if err != nil || st.Size() != size {
						t.Fatalf("%s not rebuilt: %v (size %d, want %d)", p, err, st.Size(), size)
					}
				}
			})
		}
	}
}

func TestSyncGroupCommit(t *testing.T) {
	forPolicies := []FlushPolicy{FlushAlways, FlushInterval, FlushOS}
	for _, p := range forPolicies {
		t.Run(p.String(), func(t *testing.T) {
			cfg := testConfig()
			cfg.Flush = p
			cfg.FlushInterval = 10 * time.Millisecond
			l := openT(t, t.TempDir(), cfg)
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 50; i++ {
						_, last, err := l.Append(kv(t, batch.None, 1, "k", "v"), 0)
						if err == nil {
							err = l.Sync(context.Background(), last+1)
						}
						if err == nil && p == FlushAlways && l.DurableOffset() <= last {
							err = errors.New("Sync returned before durable")
						}
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if l.EndOffset() != 400 {
				t.Fatalf("end %d", l.EndOffset())
			}
			checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
				if d := l.DurableOffset(); d != 400 {
					return errors.New("durable offset lags")
				}
				return nil
			})
		})
	}
}

func TestSyncContextAndClose(t *testing.T) {
	l := openT(t, t.TempDir(), testConfig())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := l.Append(kv(t, batch.None, 1, "k", "v"), 0); err != nil {
		t.Fatal(err)
	}
	// Either it was fast enough or it reports the context.
	if err := l.Sync(ctx, 1); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(context.Background(), 1); err != nil {
		t.Fatalf("Sync after Close of synced data: %v", err)
	}
	if _, _, err := l.Append(kv(t, batch.None, 1, "k", "v"), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := l.Read(0, 100, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNotify(t *testing.T) {
	l := openT(t, t.TempDir(), testConfig())
	ch := l.Notify()
	select {
	case <-ch:
		t.Fatal("closed before anything happened")
	default:
	}
	if _, _, err := l.Append(kv(t, batch.None, 1, "k", "v"), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Notify not closed by Append")
	}
	ch = l.Notify()
	if err := l.Sync(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Notify not closed by the fsync")
	}
}

func TestConcurrentReadersAndWriter(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	cfg.Flush = FlushOS
	l := openT(t, t.TempDir(), cfg)
	const n = 400
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := int64(0)
			for next < n {
				data, err := l.Read(next, 1000, l.EndOffset())
				if err != nil {
					t.Error(err)
					return
				}
				if data == nil {
					select {
					case <-l.Notify():
					case <-time.After(10 * time.Millisecond):
					}
					continue
				}
				if err := batch.Each(data, func(h batch.Header, b []byte) error {
					if h.BaseOffset != next {
						t.Errorf("got batch %d, want %d", h.BaseOffset, next)
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
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			if _, _, err := l.Append(kv(t, batch.Zstd, 1, "k", "value"), 0); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	<-done
	wg.Wait()
}

func TestTruncate(t *testing.T) {
	forEachCodec(t, func(t *testing.T, c batch.Codec) {
		dir := t.TempDir()
		cfg := testConfig()
		cfg.SegmentBytes = 1024
		cfg.IndexIntervalBytes = 64
		l := openT(t, dir, cfg)
		var want []batch.Record
		for i := 0; i < 25; i++ { // batches of 3: bases 0, 3, 6, ...
			want = append(want, appendRecs(t, l, c, []batch.Record{{Timestamp: 1, Value: []byte("a")}, {Timestamp: 2, Key: []byte("k")}, {Timestamp: 3, Value: make([]byte, 20)}})...)
		}
		tests := []struct{ to, wantEnd int64 }{
			{200, 75}, // past end: no-op
			{60, 60},  // boundary
			{46, 45},  // mid batch: the whole batch goes
			{44, 42},
			{3, 3},
		}
		for _, tc := range tests {
			if err := l.Truncate(tc.to); err != nil {
				t.Fatal(err)
			}
			if l.EndOffset() != tc.wantEnd || l.DurableOffset() > tc.wantEnd {
				t.Fatalf("Truncate(%d): end %d durable %d, want %d", tc.to, l.EndOffset(), l.DurableOffset(), tc.wantEnd)
			}
			sameRecords(t, readAll(t, l, 0, 100), want[:tc.wantEnd])
		}
		// Appends continue at the new end, and survive reopen.
		more := appendRecs(t, l, c, []batch.Record{{Timestamp: 9, Value: []byte("new")}})
		if more[0].Offset != 3 {
			t.Fatalf("append after truncate at %d", more[0].Offset)
		}
		want = append(want[:3], more...)
		sameRecords(t, readAll(t, l, 0, 100), want)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l2 := openT(t, dir, cfg)
		sameRecords(t, readAll(t, l2, 0, 100), want)
		// Below the start offset: the log restarts there.
		if err := l2.DeleteRecordsBefore(2); err != nil {
			t.Fatal(err)
		}
		if err := l2.Truncate(1); err != nil {
			t.Fatal(err)
		}
		if l2.StartOffset() != 1 || l2.EndOffset() != 1 {
			t.Fatalf("after full truncate: start %d end %d", l2.StartOffset(), l2.EndOffset())
		}
		if _, _, err := l2.Append(kv(t, c, 1, "a", "b"), 0); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, l2, 1, 100); len(got) != 1 || got[0].Offset != 1 {
			t.Fatalf("got %+v", got)
		}
	})
}

func TestAppendReplicated(t *testing.T) {
	leader := openT(t, t.TempDir(), testConfig())
	follower := openT(t, t.TempDir(), testConfig())
	for i := 0; i < 20; i++ {
		if _, _, err := leader.Append(kv(t, batch.LZ4, 1, "k", "v", "k2", "v2"), int32(i/5)); err != nil {
			t.Fatal(err)
		}
	}
	for next := int64(0); next < leader.EndOffset(); {
		data, err := leader.Read(next, 300, leader.EndOffset())
		if err != nil {
			t.Fatal(err)
		}
		last, err := follower.AppendReplicated(data)
		if err != nil {
			t.Fatal(err)
		}
		next = last + 1
	}
	a, _ := leader.Read(0, 1<<20, 40)
	b, _ := follower.Read(0, 1<<20, 40)
	if string(a) != string(b) {
		t.Fatal("follower bytes differ from leader's")
	}
	data, _ := leader.Read(0, 1, 40)
	if _, err := follower.AppendReplicated(data); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("replicating an old batch: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.SegmentBytes = 0 },
		func(c *Config) { c.SegmentBytes = 1 << 32 },
		func(c *Config) { c.IndexIntervalBytes = 0 },
		func(c *Config) { c.Flush = 9 },
		func(c *Config) { c.Flush = FlushInterval; c.FlushInterval = 0 },
		func(c *Config) { c.RetentionBytes = -2 },
		func(c *Config) { c.MaxBatchBytes = 10 },
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for i, f := range bad {
		c := DefaultConfig()
		f(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("case %d: %v", i, err)
		}
		if _, err := Open(t.TempDir(), c, nil); err == nil {
			t.Errorf("case %d: Open accepted it", i)
		}
	}
}

func TestDelete(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p0")
	l := openT(t, dir, testConfig())
	if _, _, err := l.Append(kv(t, batch.None, 1, "k", "v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir still there: %v", err)
	}
}

func TestSetConfigFlushSwitch(t *testing.T) {
	cfg := testConfig()
	cfg.Flush = FlushOS
	l := openT(t, t.TempDir(), cfg)
	for i := 0; i < 5; i++ {
		if _, _, err := l.Append(kv(t, batch.None, 1, "k", "v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if l.DurableOffset() != 5 {
		t.Fatalf("FlushOS durable %d", l.DurableOffset())
	}
	cfg.Flush = FlushAlways
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if l.DurableOffset() != 5 {
		t.Fatalf("durable went back to %d after switching to FlushAlways", l.DurableOffset())
	}
	if _, last, err := l.Append(kv(t, batch.None, 1, "k", "v"), 0); err != nil || l.Sync(context.Background(), last+1) != nil {
		t.Fatal(err)
	}
	if l.DurableOffset() != 6 {
		t.Fatalf("durable %d", l.DurableOffset())
	}
	if got := l.Config().Flush; got != FlushAlways {
		t.Fatalf("config %v", got)
	}
}
