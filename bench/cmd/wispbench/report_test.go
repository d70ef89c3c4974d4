package main

import (
	"os"
	"path/filepath"
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
