package logaggregation_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/examples/internal/extest"
)

// TestScenario: three hosts' log files are tailed into "logs" by three
// shippers (zstd); the files grow while the shippers run; merge writes one
// stream that must hold every line once, each host's lines in file order,
// and the topic must be smaller on disk than the raw lines.
func TestScenario(t *testing.T) {
	first, more := 300, 50
	if testing.Short() {
		first, more = 150, 30
	}
	n := extest.Node(t)
	bins := extest.Build(t, "examples/log-aggregation/ship", "examples/log-aggregation/merge")
	extest.Wisp(t, n, "", "topic", "create", "logs", "-p", "2")

	dir := t.TempDir()
	hosts := []string{"web-1", "web-2", "db-1"}
	lines := map[string][]string{}
	raw := 0
	appendLines := func(host string, from, count int) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(dir, host+".log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i := from; i < from+count; i++ {
			l := fmt.Sprintf("2024-03-01T10:%02d:%02d.%03dZ INFO %s request id=%06d method=GET path=/api/items/%d status=200 duration_ms=%d",
				i/60%60, i%60, i%1000, host, i, i%17, i%23)
			lines[host] = append(lines[host], l)
			raw += len(l) + len(host)
			b.WriteString(l + "\n")
		}
		if _, err := f.WriteString(b.String()); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range hosts {
		appendLines(h, 0, first)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Servers(n.QUIC))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	waitRecords := func(want int64) {
		t.Helper()
		extest.CheckFor(t, 30*time.Second, func() error {
			offs, err := cl.ListOffsets(ctx, "logs", client.AtEnd())
			if err != nil {
				return err
			}
			var sum int64
			for _, o := range offs {
				sum += o.Offset
			}
			if sum != want {
				return fmt.Errorf("logs holds %d records, want %d", sum, want)
			}
			return nil
		})
	}

	var shippers []*extest.Proc
	for _, h := range hosts {
		shippers = append(shippers, extest.Start(t, n, bins["ship"], "-host", h, "-file", filepath.Join(dir, h+".log")))
	}
	waitRecords(int64(len(hosts) * first))
	// The files grow; the shippers follow them.
	for _, h := range hosts {
		appendLines(h, first, more)
	}
	total := len(hosts) * (first + more)
	waitRecords(int64(total))
	for i, p := range shippers {
		p.Stop(t)
		if want := fmt.Sprintf("shipped %d lines", first+more); !strings.Contains(p.Output(), want) {
			t.Errorf("shipper %s: %q, want %q", hosts[i], p.Output(), want)
		}
	}

	out := filepath.Join(dir, "merged.log")
	extest.Run(t, n, "", bins["merge"], "-e", "-out", out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	merged := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(merged) != total {
		t.Fatalf("merged %d lines, want %d", len(merged), total)
	}
	got := map[string][]string{}
	for _, l := range merged {
		host, line, ok := strings.Cut(l, " | ")
		if !ok {
			t.Fatalf("merged line %q is not host | line", l)
		}
		got[host] = append(got[host], line)
	}
	for _, h := range hosts {
		if !slices.Equal(got[h], lines[h]) {
			t.Errorf("%s: merged stream has %d lines, not the file's %d lines in order", h, len(got[h]), len(lines[h]))
		}
	}
	// Compressed on disk: the topic takes fewer bytes than the raw keys and
	// lines alone (uncompressed batches would take more, with headers).
	info, err := cl.DescribeTopic(ctx, "logs")
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, p := range info.Partitions {
		size += p.SizeBytes
	}
	if size == 0 || size*2 > int64(raw) {
		t.Errorf("logs takes %d bytes on disk for %d raw bytes: want under half (zstd)", size, raw)
	}
	t.Logf("%d lines, %d raw bytes, %d bytes on disk", total, raw, size)
}
