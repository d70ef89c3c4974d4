package functions

import (
	"bytes"
	"context"
	"github.com/wispbus/wisp/internal/murmur2"
	"strings"
	"testing"
	"time"

	"github.com/wispbus/wisp/bus/group"
)

// Kafka's own test vectors (UtilsTest.testMurmur2).
func TestMurmur2(t *testing.T) {
	for in, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := murmur2.Sum([]byte(in)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", in, got, want)
		}
	}
	if p := choosePartition(nil, 7, 3); p != 1 {
		t.Errorf("unkeyed: partition %d, want 7 %% 3", p)
	}
}

func TestCommitMetadata(t *testing.T) {
	st := commitState{next: 10, pid: 4, epoch: 7, end: 25}
	got, ok := parseCommit(group.OffsetCommit{Offset: 10, Metadata: st.metadata()})
	if !ok || got != st {
		t.Fatalf("round trip: %+v %v", got, ok)
	}
	if _, ok := parseCommit(group.OffsetCommit{Offset: 3, Metadata: "set by kafka-consumer-groups"}); ok {
		t.Error("foreign metadata parsed")
	}
	// A pending end at or before the offset means nothing is pending.
	if got, _ := parseCommit(group.OffsetCommit{Offset: 30, Metadata: st.metadata()}); got.end != -1 {
		t.Errorf("stale end kept: %+v", got)
	}
}

func TestLogRing(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLogRing(5, 2) // 2 lines/s, bursts of 4
	l.now = func() time.Time { return now }
	for i := 0; i < 10; i++ {
		l.add(StreamStdout, string(rune('a'+i)))
	}
	lines := l.since(time.Time{})
	if len(lines) != 4 || lines[3].Text != "d" {
		t.Fatalf("after a burst: %+v", lines)
	}
	now = now.Add(2 * time.Second) // 4 tokens back
	l.add(StreamStderr, "later")
	lines = l.since(time.Time{})
	if len(lines) != 5 || !strings.Contains(lines[3].Text, "6 log lines dropped") || lines[4].Text != "later" {
		t.Fatalf("after the pause: %+v", lines)
	}
	if got := l.since(now); len(got) != 2 {
		t.Errorf("since now: %+v", got)
	}
	w := streamWriter{ring: l, stream: StreamStdout}
	now = now.Add(time.Hour)
	w.Write([]byte("one\ntwo\r\n"))
	if lines = l.since(now); len(lines) != 2 || lines[0].Text != "one" || lines[1].Text != "two" {
		t.Errorf("writer lines: %+v", lines)
	}
	l.add(StreamStdout, strings.Repeat("é", maxLineBytes))
	if last := l.since(now); len(last[len(last)-1].Text) > maxLineBytes+20 {
		t.Error("long line kept whole")
	}
}

func TestTestRun(t *testing.T) {
	in := strings.Join([]string{
		`{"key": "k1", "value": {"type": "click", "n": 1}, "headers": {"h": "v"}, "timestamp": 1700000000000}`,
		`{"value": "error"}`,
		`{"value": "trap", "offset": 9}`,
		`{"value": "bin", "key": "/w==", "key_format": "binary", "partition": 2, "topic": "other"}`,
		``,
	}, "\n")
	var out, logs bytes.Buffer
	err := TestRun(context.Background(), module(t, "testdata/evil"),
		TestOptions{Runtime: sharedRuntime(t), Outputs: []string{"out"}, Log: &logs, Timeout: time.Second},
		strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"offset":0,"topic":"out","partition":-1,"key":"k1","value":"{\"type\":\"click\",\"n\":1}","headers":{"h":"v"},"timestamp":1700000000000}`,
		`{"offset":1,"error":"record refused"}`,
		`{"offset":9,"error":"wasm: trap: out of bounds memory access"}`,
		`"offset":3,"topic":"out","partition":-1,"key":"/w==","key_format":"binary","value":"bin"`,
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(got) != len(want) {
		t.Fatalf("output:\n%s", out.String())
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("line %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	err = TestRun(context.Background(), []byte("nope"), TestOptions{Runtime: sharedRuntime(t)}, strings.NewReader(""), &out)
	if err == nil {
		t.Error("a non-module was accepted")
	}
	err = TestRun(context.Background(), module(t, "testdata/evil"), TestOptions{Runtime: sharedRuntime(t)}, strings.NewReader("{bad json"), &out)
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad input: %v", err)
	}
}
