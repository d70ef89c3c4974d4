package log

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/internal/batch"
)

const helperEnv = "WISP_LOG_CRASH_HELPER_DIR"

// TestHelperProcess is the child of TestCrashSafety: it appends with
// FlushAlways from several goroutines until killed, and prints
// "ack <first> <last> <crc>" for each batch once Sync has returned.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashSafety")
	}
	cfg := testConfig()
	cfg.SegmentBytes = 32 << 10
	l, err := Open(dir, cfg, quietLogger())
	if err != nil {
		fmt.Fprintf(os.Stdout, "error %v\n", err)
		os.Exit(2)
	}
	fmt.Fprintf(os.Stdout, "ready %d\n", l.EndOffset())
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(g)))
			for {
				c := codecs[rng.IntN(len(codecs))]
				b := build(t, c, genRecords(rng, 1+rng.IntN(20), time.Now().UnixMilli()))
				first, last, err := l.Append(b, 0)
				if err == nil {
					err = l.Sync(context.Background(), last+1)
				}
				if err != nil {
					fmt.Fprintf(os.Stdout, "error %v\n", err)
					os.Exit(2)
				}
				h, _ := batch.ParseHeader(b)
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %d %d %d\n", first, last, h.CRC)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

type ack struct {
	first, last int64
	crc         uint32
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	var acks []ack
	for round := 0; round < 5; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// Kill at a random moment once it has acknowledged something (a
		// -race child starts slowly).
		ready := false
		before := len(acks)
		var kill <-chan time.Time
		armed := false
		timeout := time.After(30 * time.Second)
	loop:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					break loop
				}
				acks, ready = parseLine(t, line, acks, ready)
				if !armed && len(acks) > before {
					armed = true
					kill = time.After(time.Duration(20+rng.IntN(300)) * time.Millisecond)
				}
			case <-timeout:
				_ = cmd.Process.Signal(syscall.SIGKILL)
				t.Fatalf("round %d: no acknowledgement within 30s", round)
			case <-kill:
				_ = cmd.Process.Signal(syscall.SIGKILL)
				kill = nil
			}
		}
		_ = cmd.Wait()
		if !ready {
			t.Fatalf("round %d: helper never started", round)
		}
		verifyAcks(t, copyDir(t, dir), acks)
	}
	if len(acks) < 5 {
		t.Fatalf("only %d acknowledged batches over all rounds", len(acks))
	}
	t.Logf("%d acknowledged batches survived 5 SIGKILLs", len(acks))
}

func parseLine(t *testing.T, line string, acks []ack, ready bool) ([]ack, bool) {
	f := strings.Fields(line)
	switch {
	case len(f) == 2 && f[0] == "ready":
		return acks, true
	case len(f) == 4 && f[0] == "ack":
		first, _ := strconv.ParseInt(f[1], 10, 64)
		last, _ := strconv.ParseInt(f[2], 10, 64)
		crc, _ := strconv.ParseUint(f[3], 10, 32)
		return append(acks, ack{first, last, uint32(crc)}), ready
	case strings.HasPrefix(line, "error"):
		t.Fatalf("helper: %s", line)
	}
	return acks, ready
}

// verifyAcks opens a crash image and checks that every acknowledged batch
// is there, intact, in order, and that the log takes appends.
func verifyAcks(t *testing.T, dir string, acks []ack) {
	t.Helper()
	l := openT(t, dir, testConfig())
	byFirst := map[int64]ack{}
	for _, a := range acks {
		byFirst[a.first] = a
	}
	found := 0
	prev := int64(-1)
	for next := int64(0); next < l.EndOffset(); {
		data, err := l.Read(next, 1<<20, l.EndOffset())
		if err != nil {
			t.Fatal(err)
		}
		if err := batch.Each(data, func(h batch.Header, b []byte) error {
			if h.BaseOffset <= prev {
				return fmt.Errorf("batch %d after %d", h.BaseOffset, prev)
			}
			if _, err := batch.Records(b); err != nil {
				return err
			}
			prev = h.BaseOffset
			if a, ok := byFirst[h.BaseOffset]; ok {
				if a.last != h.LastOffset() || a.crc != h.CRC {
					return fmt.Errorf("batch %d: got last %d crc %d, acked %+v", h.BaseOffset, h.LastOffset(), h.CRC, a)
				}
				found++
			}
			next = h.NextOffset()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if found != len(acks) {
		t.Fatalf("%d of %d acknowledged batches found (end %d)", found, len(acks), l.EndOffset())
	}
	if _, _, err := l.Append(kv(t, batch.None, 1, "after", "crash"), 0); err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// buildDamageLog writes n batches into one segment and returns the dir,
// the batches as stored and their positions.
func buildDamageLog(t *testing.T, n int) (string, [][]byte, []int64) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 30
	l := openT(t, dir, cfg)
	rng := rand.New(rand.NewPCG(11, 11))
	for i := 0; i < n; i++ {
		if _, _, err := l.Append(build(t, codecs[i%len(codecs)], genRecords(rng, 1+rng.IntN(10), 1)), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "00000000000000000000.log"))
	if err != nil {
		t.Fatal(err)
	}
	var stored [][]byte
	var pos []int64
	p := int64(0)
	if err := batch.Each(raw, func(h batch.Header, b []byte) error {
		stored = append(stored, b)
		pos = append(pos, p)
		p += int64(len(b))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return dir, stored, pos
}

// TestRecoveryDamage truncates the segment at a random position (with and
// without a clean-shutdown marker and index files) or flips a random byte
// (as a crash would leave it: no marker); reopen never fails, never serves a
// corrupt batch, and keeps every batch before the damage. A last kind of
// trial flips a byte under a batch's CRC after a clean shutdown (bit rot,
// which Open does not look for): Read must refuse that batch.
func TestRecoveryDamage(t *testing.T) {
	src, stored, pos := buildDamageLog(t, 40)
	size := pos[len(pos)-1] + int64(len(stored[len(stored)-1]))
	rng := rand.New(rand.NewPCG(13, 13))
	const (
		truncClean = iota
		truncCrash
		flipCrash
		rotClean
	)
	for trial := 0; trial < 80; trial++ {
		kind := trial % 4
		dir := copyDir(t, src)
		seg := filepath.Join(dir, "00000000000000000000.log")
		at := rng.Int64N(size)
		if kind != truncClean && kind != rotClean {
			_ = os.Remove(filepath.Join(dir, cleanShutdownFile))
		}
		if trial%8 == 1 {
			removeIndexes(dir, 0)
		}
		damaged := 0 // the batch holding byte at
		for damaged+1 < len(pos) && pos[damaged+1] <= at {
			damaged++
		}
		if kind == rotClean && at-pos[damaged] < 21 {
			at = pos[damaged] + 21 // under the CRC
		}
		switch kind {
		case truncClean, truncCrash:
			if err := os.Truncate(seg, at); err != nil {
				t.Fatal(err)
			}
		default:
			raw, _ := os.ReadFile(seg)
			raw[at] ^= byte(1 << rng.IntN(8))
			_ = os.WriteFile(seg, raw, 0o644)
		}
		l, err := Open(dir, testConfig(), quietLogger())
		if err != nil {
			t.Fatalf("trial %d (kind %d at %d): Open: %v", trial, kind, at, err)
		}
		var got [][]byte
		for next := l.StartOffset(); next < l.EndOffset(); {
			data, err := l.Read(next, 1<<20, l.EndOffset())
			if kind == rotClean && errors.Is(err, kerr.CorruptMessage) && len(got) == damaged {
				break
			}
			if err != nil {
				t.Fatalf("trial %d (kind %d at %d): Read(%d): %v", trial, kind, at, next, err)
			}
			prev := next
			if err := batch.Each(data, func(h batch.Header, b []byte) error {
				got = append(got, b)
				next = h.NextOffset()
				return nil
			}); err != nil {
				t.Fatalf("trial %d: served a corrupt batch: %v", trial, err)
			}
			if next <= prev {
				t.Fatalf("trial %d (kind %d at %d): Read(%d) went backwards to %d", trial, kind, at, prev, next)
			}
		}
		if len(got) < damaged {
			t.Fatalf("trial %d (kind %d at %d): %d batches left, damage in batch %d", trial, kind, at, len(got), damaged)
		}
		for i, b := range got {
			// Bytes under the CRC must match; a flip outside it (base
			// offset, leader epoch) can leave the damaged batch readable
			// with a wrong header, never with wrong records.
			if !bytes.Equal(b[16:], stored[i][16:]) || (i != damaged && !bytes.Equal(b, stored[i])) {
				t.Fatalf("trial %d (kind %d at %d): batch %d differs", trial, kind, at, i)
			}
		}
		if _, _, err := l.Append(kv(t, batch.None, 1, "k", "v"), 0); err != nil {
			t.Fatalf("trial %d: append after recovery: %v", trial, err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrashDuringRoll leaves an empty new segment behind, as a crash right
// after the roll created it would.
func TestCrashDuringRoll(t *testing.T) {
	src, stored, _ := buildDamageLog(t, 10)
	dir := copyDir(t, src)
	_ = os.Remove(filepath.Join(dir, cleanShutdownFile))
	next := int64(0)
	for _, b := range stored {
		h, _ := batch.ParseHeader(b)
		next = h.NextOffset()
	}
	if err := os.WriteFile(segPath(dir, next, logSuffix), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// And leftovers of a compaction that never committed.
	_ = os.WriteFile(segPath(dir, 0, logSuffix+cleanedSuffix), []byte("junk"), 0o644)
	l := openT(t, dir, testConfig())
	if l.EndOffset() != next {
		t.Fatalf("end %d, want %d", l.EndOffset(), next)
	}
	if _, err := os.Stat(segPath(dir, 0, logSuffix+cleanedSuffix)); !os.IsNotExist(err) {
		t.Fatal(".cleaned leftover not removed")
	}
	first, _, err := l.Append(kv(t, batch.None, 1, "k", "v"), 0)
	if err != nil || first != next {
		t.Fatalf("append: %d, %v", first, err)
	}
	if len(readAll(t, l, 0, 1<<20)) == 0 {
		t.Fatal("lost data")
	}
}

// FuzzRecovery writes arbitrary bytes after valid batches: Open must
// neither fail nor panic and must keep the valid prefix.
func FuzzRecovery(f *testing.F) {
	var valid []byte
	next := int64(0)
	rng := rand.New(rand.NewPCG(17, 17))
	for i := 0; i < 3; i++ {
		b := build(f, codecs[i], genRecords(rng, 3, 1))
		batch.SetBaseOffset(b, next)
		h, _ := batch.ParseHeader(b)
		next = h.NextOffset()
		valid = append(valid, b...)
	}
	another := build(f, batch.None, genRecords(rng, 2, 1))
	batch.SetBaseOffset(another, next)
	f.Add([]byte{}, false)
	f.Add([]byte{0, 0, 0}, true)
	f.Add(another, false)
	f.Add(another[:len(another)-1], false)
	f.Add(append(append([]byte{}, another...), another...), true) // offsets go backwards
	f.Add(make([]byte, 200), false)
	f.Fuzz(func(t *testing.T, tail []byte, clean bool) {
		dir := t.TempDir()
		content := append(append([]byte{}, valid...), tail...)
		if err := os.WriteFile(segPath(dir, 0, logSuffix), content, 0o644); err != nil {
			t.Fatal(err)
		}
		if clean {
			_ = os.WriteFile(filepath.Join(dir, cleanShutdownFile), nil, 0o644)
		}
		l, err := Open(dir, testConfig(), quietLogger())
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()
		if l.EndOffset() < next {
			t.Fatalf("end %d < valid prefix end %d", l.EndOffset(), next)
		}
		_, err = l.Read(0, 1, l.EndOffset())
		if err != nil {
			t.Fatal(err)
		}
		var all []byte
		for off := int64(0); off < l.EndOffset(); {
			data, err := l.Read(off, 1<<20, l.EndOffset())
			if err != nil {
				t.Fatal(err)
			}
			if err := batch.Each(data, func(h batch.Header, b []byte) error {
				if _, err := batch.Records(b); err != nil && h.BaseOffset < next {
					return err
				}
				off = h.NextOffset()
				return nil
			}); err != nil {
				t.Fatalf("served a bad batch: %v", err)
			}
			all = append(all, data...)
		}
		if !bytes.HasPrefix(all, valid) {
			t.Fatal("valid prefix changed")
		}
	})
}
