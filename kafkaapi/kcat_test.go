package kafkaapi

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wispbus/wisp/internal/batch"
)

// kcat runs kcat (librdkafka 2.x) against the server with stdin as input.
func kcat(t testing.TB, ts *testServer, stdin string, args ...string) string {
	t.Helper()
	bin := needTool(t, "kcat", "kafkacat")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-b", ts.addr}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %v: %v\n%s%s", args, err, out, stderr.String())
	}
	return string(out)
}

func TestKcat(t *testing.T) {
	needTool(t, "kcat", "kafkacat")
	ts := startServer(t)
	createTopic(t, ts, "kc", 3)

	t.Run("metadata", func(t *testing.T) {
		out := kcat(t, ts, "", "-L")
		for _, want := range []string{"1 brokers:", "broker 1 at " + ts.addr, `topic "kc" with 3 partitions:`, "partition 2, leader 1, replicas: 1, isrs: 1"} {
			if !strings.Contains(out, want) {
				t.Errorf("kcat -L lacks %q:\n%s", want, out)
			}
		}
	})

	var lines []string
	for i := range 30 {
		lines = append(lines, fmt.Sprintf("key%d:value %d", i, i))
	}
	t.Run("produce with keys", func(t *testing.T) {
		kcat(t, ts, strings.Join(lines, "\n")+"\n", "-P", "-t", "kc", "-K:")
		total := int64(0)
		for _, p := range mustTopic(t, ts, "kc").Partitions {
			total += p.HighWatermark
		}
		if total != 30 {
			t.Fatalf("%d records stored, want 30", total)
		}
	})

	t.Run("consume", func(t *testing.T) {
		out := kcat(t, ts, "", "-C", "-t", "kc", "-e", "-f", "%k:%s\n")
		got := strings.Split(strings.TrimSpace(out), "\n")
		slices.Sort(got)
		want := slices.Clone(lines)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("kcat -C printed %d lines:\n%s", len(got), out)
		}
	})

	t.Run("group consume", func(t *testing.T) {
		// -G is librdkafka's balanced consumer: FindCoordinator,
		// JoinGroup, SyncGroup, OffsetFetch, Heartbeat, OffsetCommit.
		out := kcat(t, ts, "", "-G", "kcgroup", "-o", "beginning", "-e", "-f", "%k:%s\n", "kc")
		got := strings.Split(strings.TrimSpace(out), "\n")
		if len(got) != 30 {
			t.Fatalf("kcat -G printed %d lines:\n%s", len(got), out)
		}
		checkFor(t, 10*time.Second, func() error {
			offs, err := ts.b.Groups().FetchOffsets("kcgroup", nil)
			if err != nil {
				return err
			}
			total := int64(0)
			for _, oc := range offs {
				total += oc.Offset
			}
			if total != 30 {
				return fmt.Errorf("kcgroup committed %d records (%v), want 30", total, offs)
			}
			return nil
		})
	})

	t.Run("zstd", func(t *testing.T) {
		createTopic(t, ts, "kcz", 1)
		var in []string
		for i := range 50 {
			in = append(in, fmt.Sprintf("zstd compressed record %d %s", i, strings.Repeat("z", 100)))
		}
		kcat(t, ts, strings.Join(in, "\n")+"\n", "-P", "-t", "kcz", "-z", "zstd")
		if codecs := storedCodecs(t, ts, "kcz"); !codecs[batch.Zstd] {
			t.Fatalf("stored codecs %v, want zstd", codecs)
		}
		out := kcat(t, ts, "", "-C", "-t", "kcz", "-e", "-f", "%s\n")
		if got := strings.Split(strings.TrimSpace(out), "\n"); !slices.Equal(got, in) {
			t.Fatalf("kcat -C read back %d records:\n%s", len(got), out)
		}
	})
}
