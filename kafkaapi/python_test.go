package kafkaapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wispbus/wisp/internal/batch"
)

// pythonWith returns a Python 3 that imports kafka (kafka-python) and the
// given extra modules. kafka-python 2.0.2 fails to import on Python 3.12+,
// so Debian's /usr/bin/python3 (3.11, where python3-kafka installs) comes
// first.
func pythonWith(t testing.TB, modules ...string) string {
	t.Helper()
	imports := strings.Join(append([]string{"kafka"}, modules...), ", ")
	var tried []string
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		out, err := exec.Command(path, "-c", "import "+imports).CombinedOutput()
		if err == nil {
			return path
		}
		tried = append(tried, fmt.Sprintf("%s: %s", path, strings.TrimSpace(lastLine(string(out)))))
	}
	msg := fmt.Sprintf("MISSING TOOL python3 with %s (Debian: apt-get install python3-kafka python3-snappy python3-lz4 python3-zstandard; tried %v); this interoperability test did NOT run", imports, tried)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func script(name string) string { return filepath.Join("testdata", name) }

// runPython runs a script of testdata and returns its output.
func runPython(t testing.TB, py, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, append([]string{script(name)}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// TestKafkaPythonTutorial runs the stock kafka-python tutorial: produce to
// a topic that does not exist yet (auto-created), consume from the start.
func TestKafkaPythonTutorial(t *testing.T) {
	py := pythonWith(t)
	ts := startServer(t)
	out := runPython(t, py, "tutorial.py", ts.addr)
	if !strings.Contains(out, "b'Hello, Kafka!'") {
		t.Fatalf("tutorial printed:\n%s", out)
	}
	if got := strings.Count(out, "Hello, Kafka!"); got != 1 {
		t.Fatalf("message printed %d times:\n%s", got, out)
	}
}

// pyMember is one group_consumer.py process.
type pyMember struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}

	mu      sync.Mutex
	records []string
	output  []string
}

func startPyMember(t *testing.T, py, addr, topic, group string) *pyMember {
	t.Helper()
	m := &pyMember{done: make(chan struct{})}
	m.cmd = exec.Command(py, script("group_consumer.py"), addr, topic, group)
	var err error
	if m.stdin, err = m.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	m.cmd.Stderr = m.cmd.Stdout
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			m.mu.Lock()
			m.output = append(m.output, line)
			if v, ok := strings.CutPrefix(line, "record "); ok {
				m.records = append(m.records, v)
			}
			m.mu.Unlock()
		}
	}()
	t.Cleanup(func() { m.stop(t) })
	return m
}

func (m *pyMember) consumed() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.records...)
}

// stop closes stdin, so that the member commits, leaves the group and
// exits.
func (m *pyMember) stop(t *testing.T) {
	if m.cmd.ProcessState != nil {
		return
	}
	_ = m.stdin.Close()
	select {
	case <-m.done:
	case <-time.After(20 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	if err := m.cmd.Wait(); err != nil {
		m.mu.Lock()
		t.Errorf("group_consumer.py: %v\n%s", err, strings.Join(m.output, "\n"))
		m.mu.Unlock()
	}
}

// TestKafkaPythonGroup: two kafka-python consumers share a group and
// consume every record once; their commits survive a broker restart.
func TestKafkaPythonGroup(t *testing.T) {
	py := pythonWith(t)
	ts := startServer(t)
	const topic, group, n = "pygroup", "pyg", 200
	createTopic(t, ts, topic, 4)

	a := startPyMember(t, py, ts.addr, topic, group)
	b := startPyMember(t, py, ts.addr, topic, group)
	checkFor(t, 30*time.Second, func() error {
		d, err := ts.b.Groups().DescribeGroup(group)
		if err != nil || d.State != "Stable" || len(d.Members) != 2 {
			return fmt.Errorf("group not settled with two members: %+v %v", d, err)
		}
		return nil
	})
	produceStrings(t, ts, topic, "first", n)
	checkFor(t, 30*time.Second, func() error {
		if got := len(a.consumed()) + len(b.consumed()); got < n {
			return fmt.Errorf("consumed %d of %d", got, n)
		}
		return nil
	})
	a.stop(t)
	b.stop(t)
	seen := map[string]int{}
	for _, m := range []*pyMember{a, b} {
		if len(m.consumed()) == 0 {
			t.Errorf("a member consumed nothing: the partitions were not shared")
		}
		for _, v := range m.consumed() {
			seen[v]++
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct records consumed, want %d", len(seen), n)
	}
	for v, c := range seen {
		if c != 1 {
			t.Errorf("%s consumed %d times", v, c)
		}
	}

	// Restart the broker on the same data: the group resumes at its
	// commits, so a new member sees only what is produced afterwards.
	ts.restart(t)
	offs, err := ts.b.Groups().FetchOffsets(group, nil)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for _, oc := range offs {
		total += oc.Offset
	}
	if total != n {
		t.Fatalf("after restart the committed offsets add up to %d, want %d", total, n)
	}
	c := startPyMember(t, py, ts.addr, topic, group)
	checkFor(t, 30*time.Second, func() error {
		if d, _ := ts.b.Groups().DescribeGroup(group); d.State != "Stable" {
			return fmt.Errorf("group %s", d.State)
		}
		return nil
	})
	produceStrings(t, ts, topic, "second", 20)
	checkFor(t, 30*time.Second, func() error {
		if got := len(c.consumed()); got < 20 {
			return fmt.Errorf("consumed %d of 20", got)
		}
		return nil
	})
	c.stop(t)
	for _, v := range c.consumed() {
		if !strings.HasPrefix(v, "second-") {
			t.Errorf("after restart the group consumed %q again", v)
		}
	}
}

func produceStrings(t testing.TB, ts *testServer, topic, prefix string, n int) {
	t.Helper()
	cl := ts.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, kgo.StringRecord(fmt.Sprintf("%s-%d", prefix, i)))
	}
	if err := cl.ProduceSync(ctxTimeout(t, 20*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
}

// TestKafkaPythonCompression produces with kafka-python's codecs (snappy
// xerial-framed, as it sends it) and reads back with franz-go.
func TestKafkaPythonCompression(t *testing.T) {
	cases := []struct {
		codec, module string
		want          batch.Codec
	}{
		{"gzip", "", batch.Gzip},
		{"snappy", "snappy", batch.Snappy},
		{"lz4", "lz4", batch.LZ4},
		{"zstd", "zstandard", batch.Zstd},
	}
	ts := startServer(t)
	for _, c := range cases {
		t.Run(c.codec, func(t *testing.T) {
			var py string
			if c.module == "" {
				py = pythonWith(t)
			} else {
				py = pythonWith(t, c.module)
			}
			topic := "py-" + c.codec
			createTopic(t, ts, topic, 1)
			runPython(t, py, "produce.py", ts.addr, topic, c.codec, "30", c.codec)
			if codecs := storedCodecs(t, ts, topic); !codecs[c.want] {
				t.Fatalf("stored batches use codecs %v, want %v among them", codecs, c.want)
			}
			got := consumeN(t, ts, topic, 30)
			for i, r := range got {
				v, _, _ := strings.Cut(string(r.Value), " ")
				if want := fmt.Sprintf("%s-%d", c.codec, i); v != want || string(r.Key) != fmt.Sprintf("k%d", i) {
					t.Fatalf("record %d: %q=%q, want %q", i, r.Key, r.Value, want)
				}
			}
		})
	}
}

// storedCodecs lists the codecs of the batches stored in partition 0.
func storedCodecs(t testing.TB, ts *testServer, topic string) map[batch.Codec]bool {
	t.Helper()
	codecs := map[batch.Codec]bool{}
	hw := mustTopic(t, ts, topic).Partitions[0].HighWatermark
	for off := int64(0); off < hw; {
		res, err := ts.b.Fetch(context.Background(), topic, 0, off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		err = batch.Each(res.Batches, func(h batch.Header, _ []byte) error {
			codecs[h.Codec()] = true
			off = h.NextOffset()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return codecs
}
