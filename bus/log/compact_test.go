package log

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wispbus/wisp/internal/batch"
)

// compactFixture appends one batch per segment (SegmentBytes 1 rolls on
// every append):
//
//	seg  offsets  records
//	0    0-2      k1=a k2=b (null)=n1
//	3    3-4      k1=c k3=x
//	5    5-6      k2=<tombstone> k4=y
//	7    7        k3=z
//	8    8-9      k5=v k4=w
//	10   10       k4=p            producer 42
//	11   11       k4=q
//	12   12       k1=d            active segment
func compactFixture(t *testing.T, dir string, c batch.Codec) *Log {
	cfg := testConfig()
	cfg.SegmentBytes = 1
	cfg.DeleteRetention = time.Hour
	l := openT(t, dir, cfg)
	app := func(b []byte) {
		if _, _, err := l.Append(b, 0); err != nil {
			t.Fatal(err)
		}
	}
	app(kv(t, c, 100, "k1", "a", "k2", "b", "", "n1"))
	app(kv(t, c, 200, "k1", "c", "k3", "x"))
	app(kv(t, c, 300, "k2", "<nil>", "k4", "y"))
	app(kv(t, c, 400, "k3", "z"))
	app(kv(t, c, 500, "k5", "v", "k4", "w"))
	opts := batch.Options{Codec: c, ProducerID: 42, ProducerEpoch: 3, BaseSequence: 17}
	pb, err := batch.Build(opts, []batch.Record{{Timestamp: 600, Key: []byte("k4"), Value: []byte("p")}})
	if err != nil {
		t.Fatal(err)
	}
	app(pb)
	app(kv(t, c, 700, "k4", "q"))
	app(kv(t, c, 800, "k1", "d"))
	return l
}

// summary renders the log as "offset:key=value" records and
// "[base-last codec n]" batch headers.
func summary(t *testing.T, l *Log) (recs, batches string) {
	t.Helper()
	var rs, bs []string
	for next := l.StartOffset(); next < l.EndOffset(); {
		data, err := l.Read(next, 1<<20, l.EndOffset())
		if err != nil {
			t.Fatal(err)
		}
		if err := batch.Each(data, func(h batch.Header, b []byte) error {
			bs = append(bs, fmt.Sprintf("[%d-%d %s %d pid=%d]", h.BaseOffset, h.LastOffset(), h.Codec(), h.NumRecords, h.ProducerID))
			records, err := batch.Records(b)
			if err != nil {
				return err
			}
			for _, r := range records {
				k, v := "null", "<nil>"
				if r.Key != nil {
					k = string(r.Key)
				}
				if r.Value != nil {
					v = string(r.Value)
				}
				rs = append(rs, fmt.Sprintf("%d:%s=%s@%d", r.Offset, k, v, r.Timestamp))
			}
			next = h.NextOffset()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Join(rs, " "), strings.Join(bs, " ")
}

func TestCompact(t *testing.T) {
	forEachCodec(t, func(t *testing.T, c batch.Codec) {
		dir := t.TempDir()
		l := compactFixture(t, dir, c)
		pre := copyDir(t, dir)
		now := time.UnixMilli(1_000_000)

		if err := l.Compact(now); err != nil {
			t.Fatal(err)
		}
		recs, batches := summary(t, l)
		wantRecs := "2:null=n1@100 3:k1=c@200 5:k2=<nil>@300 7:k3=z@400 8:k5=v@500 11:k4=q@700 12:k1=d@800"
		if recs != wantRecs {
			t.Fatalf("after first compaction:\n got %s\nwant %s", recs, wantRecs)
		}
		// Offset ranges kept (3-4 lost its last record), empty batch of
		// producer 42 kept, 8-9 lost its last record.
		cs := c.String()
		wantBatches := fmt.Sprintf("[0-2 %[1]s 1 pid=-1] [3-4 %[1]s 1 pid=-1] [5-6 %[1]s 1 pid=-1] [7-7 %[1]s 1 pid=-1] "+
			"[8-9 %[1]s 1 pid=-1] [10-10 %[1]s 0 pid=42] [11-11 %[1]s 1 pid=-1] [12-12 %[1]s 1 pid=-1]", cs)
		if batches != wantBatches {
			t.Fatalf("batches:\n got %s\nwant %s", batches, wantBatches)
		}
		if l.EndOffset() != 13 {
			t.Fatalf("end %d", l.EndOffset())
		}

		// Tombstones go once DeleteRetention has passed since compaction
		// first saw their segment.
		if err := l.Compact(now.Add(59 * time.Minute)); err != nil {
			t.Fatal(err)
		}
		if r, _ := summary(t, l); r != wantRecs {
			t.Fatalf("tombstone dropped too early: %s", r)
		}
		if err := l.Compact(now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		wantRecs = "2:null=n1@100 3:k1=c@200 7:k3=z@400 8:k5=v@500 11:k4=q@700 12:k1=d@800"
		if r, _ := summary(t, l); r != wantRecs {
			t.Fatalf("after tombstone removal:\n got %s\nwant %s", r, wantRecs)
		}
		if _, err := os.Stat(segPath(dir, 5, logSuffix)); !os.IsNotExist(err) {
			t.Fatalf("emptied segment 5 still there: %v", err)
		}
		// Reading from inside the removed range moves on.
		if data, err := l.Read(5, 1, 13); err != nil || batchBases(t, data)[0] != 7 {
			t.Fatalf("Read(5): %v", err)
		}
		// No leftovers; everything survives reopen; appends continue.
		for _, pat := range []string{"*" + cleanedSuffix, "*" + swapSuffix, "*" + tmpSuffix} {
			if m, _ := filepath.Glob(filepath.Join(dir, pat)); len(m) > 0 {
				t.Fatalf("leftovers %v", m)
			}
		}
		post, _ := os.ReadFile(segPath(dir, 0, logSuffix))
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l2 := openT(t, dir, l.Config())
		if r, _ := summary(t, l2); r != wantRecs {
			t.Fatalf("after reopen: %s", r)
		}
		if first, _, err := l2.Append(kv(t, c, 900, "k9", "z"), 0); err != nil || first != 13 {
			t.Fatalf("append: %d %v", first, err)
		}

		// A crash past the commit point: Open finishes the swap.
		if err := os.WriteFile(segPath(pre, 0, logSuffix+swapSuffix), post, 0o644); err != nil {
			t.Fatal(err)
		}
		l3 := openT(t, pre, l.Config())
		r, _ := summary(t, l3)
		if !strings.HasPrefix(r, "2:null=n1@100 3:k1=a@200") && !strings.HasPrefix(r, "2:null=n1@100 3:k1=c@200") {
			t.Fatalf("after swap recovery: %s", r)
		}
		if got, _ := os.ReadFile(segPath(pre, 0, logSuffix)); string(got) != string(post) {
			t.Fatal("swap not completed")
		}
	})
}

// TestCompactConcurrent runs compaction while appending and reading.
func TestCompactConcurrent(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 2048
	cfg.Flush = FlushOS
	l := openT(t, t.TempDir(), cfg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			if _, _, err := l.Append(kv(t, batch.Snappy, int64(i), fmt.Sprint("k", i%20), fmt.Sprint(i)), 0); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for {
		select {
		case <-done:
		default:
			if err := l.Compact(time.Now()); err != nil {
				t.Fatal(err)
			}
			_ = readAll(t, l, l.StartOffset(), 4096)
			continue
		}
		break
	}
	if err := l.Compact(time.Now()); err != nil {
		t.Fatal(err)
	}
	// Every key's newest value survives.
	newest := map[string]string{}
	for _, r := range readAll(t, l, 0, 1<<20) {
		newest[string(r.Key)] = string(r.Value)
	}
	for k := 0; k < 20; k++ {
		if want := fmt.Sprint(1980 + k); newest[fmt.Sprint("k", k)] != want {
			t.Fatalf("k%d = %s, want %s", k, newest[fmt.Sprint("k", k)], want)
		}
	}
}
