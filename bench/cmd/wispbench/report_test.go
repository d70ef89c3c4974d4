package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteSection(t *testing.T) {
	section := Heading + "\n\nnew table\n"
	tests := []struct {
		name, before, want string
	}{
		{"no file", "", "# Benchmarks\n\n" + section},
		{"appended after other sections",
			"# Benchmarks\n\n## Storage\n\nlog figures\n",
			"# Benchmarks\n\n## Storage\n\nlog figures\n\n" + section},
		{"replaced, sections around kept",
			"# Benchmarks\n\n## Storage\n\nx\n\n" + Heading + "\n\nold\n### sub\n```\n## not a heading\n```\n\n## Later\n\ny\n",
			"# Benchmarks\n\n## Storage\n\nx\n\n" + section + "\n## Later\n\ny\n"},
		{"replaced at the end",
			"# B\n\n" + Heading + "\n\nold\n",
			"# B\n\n" + section},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "docs", "benchmarks.md")
			if tc.before != "" {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tc.before), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := writeSection(path, section); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
			// Rewriting gives the same file.
			if err := writeSection(path, section); err != nil {
				t.Fatal(err)
			}
			again, _ := os.ReadFile(path)
			if string(again) != string(got) {
				t.Errorf("second write changed the file:\n%q", again)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	runs := func(rates ...float64) []run {
		var rs []run
		for _, r := range rates {
			rs = append(rs, run{records: int64(r), elapsed: time.Second})
		}
		return rs
	}
	tests := []struct {
		in            []run
		med, min, max float64
	}{
		{runs(3, 1, 2), 2, 1, 3},
		{runs(4, 1, 2, 3), 2.5, 1, 4},
		{runs(7), 7, 7, 7},
	}
	for _, tc := range tests {
		s := summarize(tc.in, run.rate)
		if s.med != tc.med || s.min != tc.min || s.max != tc.max {
			t.Errorf("summarize(%v) = %+v, want med %v min %v max %v", tc.in, s, tc.med, tc.min, tc.max)
		}
	}
	if summarize(nil, run.rate).valid() {
		t.Error("summary of no runs is valid")
	}
}

func TestHuman(t *testing.T) {
	for in, want := range map[float64]string{999: "999", 1234: "1.23k", 56_700: "56.7k", 1_340_000: "1.34M", 5: "5.00"} {
		if got := human(in); got != want {
			t.Errorf("human(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{153.6: "154 µs", 1500: "1.50 ms", 2_000_000: "2.00 s"} {
		if got := micros(in); got != want {
			t.Errorf("micros(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestMarkdownTables checks that every row of every table has as many
// cells as its header, with Redis Streams measured and without it.
func TestMarkdownTables(t *testing.T) {
	one := func(rate float64) []run {
		h := newHist()
		_ = h.RecordValue(int64(300 * time.Microsecond))
		return []run{{records: int64(rate), bytes: int64(rate) * 100, elapsed: time.Second, hist: h}}
	}
	work := func(context.Context, time.Duration) (run, error) { return run{}, nil }
	for _, redisOn := range []bool{true, false} {
		r := &report{o: options{reps: 1, dur: time.Second, mode: "short"}, m: machine{cpus: 2, deps: map[string]string{}},
			started: time.Now(), finished: time.Now()}
		async := &row{id: "async100", title: "produce async, 100 B", wispDur: wispOS, natsDur: natsOS, wisp: one(1e6), peer: one(1e5)}
		sync := &row{id: "sync", title: "produce sync", wispDur: wispOS, natsDur: natsOS, sync: true, wisp: one(3e3), peer: one(5e3)}
		if redisOn {
			r.redisVersion = "7.0.15"
			async.redisDur, async.redisWork, async.redis = redisOS, work, one(4e5)
		} else {
			r.redisSkip = "redis-server is not installed"
		}
		r.rows = []*row{async, sync}
		r.e2e = []*row{{id: "e2e-5000", rate: 5000, wispDur: wispOS, natsDur: natsOS, wisp: one(5e3), peer: one(5e3)}}
		r.frontends = []*frontend{{title: "Kafka listener", how: "async", runs: one(2e6)}}
		r.rows = append(r.rows,
			&row{id: "r3-async", title: "produce async, 100 B, 3 replicas", wispDur: wispOS, natsDur: natsOS, wisp: one(3e5), peer: one(4e4)},
			&row{id: "r3-sync", title: "produce sync, 3 replicas", wispDur: wispOS, natsDur: natsOS, sync: true, wisp: one(1e3), peer: one(1e3)})
		r.failovers = []failover{{system: "wisp", victim: "node 1", took: 2 * time.Second}, {system: "NATS JetStream", err: "boom"}}
		r.functions = []*fnRow{{title: "pass", how: "p", e2e: one(5e3), drain: one(4e5)}, {title: "filter", how: "f", e2e: one(5e3), drain: one(1e5)}}
		r.fnBacklogN = 200000
		md := r.markdown("", "")
		cells := -1
		for _, line := range strings.Split(md, "\n") {
			if !strings.HasPrefix(line, "|") {
				cells = -1
				continue
			}
			n := strings.Count(line, "|") - 1
			if cells < 0 {
				cells = n
			} else if n != cells {
				t.Errorf("redis %v: %d cells, header has %d: %s", redisOn, n, cells, line)
			}
		}
		if redisOn && !strings.Contains(md, "| **400k**/s") {
			t.Errorf("no Redis figure in\n%s", md)
		}
		for _, want := range []string{"| ↳ 3 replicas ÷ 1 (throughput kept) | 0.30× | 0.40× | |",
			"| failover: leader killed → first ack | **2s** (node 1) | not measured (see failures) | |",
			"| filter | f | **300 µs**", "0.25× |", "- failover, NATS JetStream: boom"} {
			if !strings.Contains(md, want) {
				t.Errorf("redis %v: no %q in\n%s", redisOn, want, md)
			}
		}
		if !redisOn && !strings.Contains(md, "Redis Streams: **skipped**, redis-server is not installed") {
			t.Errorf("no skip line in\n%s", md)
		}
		if svg := r.svg(); redisOn != strings.Contains(svg, "Redis 400k/s") {
			t.Errorf("redis %v: SVG Redis bar %v", redisOn, !redisOn)
		}
	}
}
