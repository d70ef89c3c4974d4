package cli

import (
	"testing"
	"time"
)

func TestFnParseMemory(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int // 0: an error
	}{
		{"64MiB", 64}, {"64Mi", 64}, {"64M", 64}, {"64MB", 64}, {"64", 64}, {" 32 MiB", 32},
		{"1GiB", 1024}, {"4G", 4096}, {"5GiB", 0}, {"0", 0}, {"-1MiB", 0}, {"64KiB", 0}, {"lots", 0}, {"", 0},
	} {
		got, err := parseMemory(tc.in)
		if (err != nil) != (tc.want == 0) || got != tc.want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestFnParseSince(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time // zero: an error
	}{
		{"10m", now.Add(-10 * time.Minute)},
		{"0s", now},
		{"2024-05-01T10:00:00Z", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		{"1714557600000", time.UnixMilli(1714557600000)},
		{"-5m", time.Time{}},
		{"yesterday", time.Time{}},
	} {
		got, err := parseSince(tc.in, now)
		if (err != nil) != tc.want.IsZero() || !got.Equal(tc.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}
