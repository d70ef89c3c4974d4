package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/internal/testnode"
	"github.com/wispbus/wisp/wasm/wasmtest"
)

// writeModule builds an sdk-wasm package (examples/filter, ...) with the
// Go toolchain and writes the module to a file for the CLI.
func writeModule(t *testing.T, pkg string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), filepath.Base(pkg)+".wasm")
	if err := os.WriteFile(path, wasmtest.Build(t, pkg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// fnList is `wisp fn list --format json`.
func fnList(t *testing.T, n *testnode.Node) []client.FunctionInfo {
	t.Helper()
	var out []client.FunctionInfo
	mustJSON(t, mustWisp(t, n, "", "fn", "list", "--format", "json").stdout, &out)
	return out
}

// fnDescribe is `wisp fn describe NAME --format json`.
func fnDescribe(t *testing.T, n *testnode.Node, name string) client.FunctionDetail {
	t.Helper()
	var d client.FunctionDetail
	mustJSON(t, mustWisp(t, n, "", "fn", "describe", name, "--format", "json").stdout, &d)
	return d
}

// caughtUp waits until the function has processed its whole input: no
// lag, and every partition's committed offset at its high watermark.
func caughtUp(t *testing.T, n *testnode.Node, name string, in int64) client.FunctionDetail {
	t.Helper()
	var d client.FunctionDetail
	checkFor(t, 60*time.Second, func() error {
		d = fnDescribe(t, n, name)
		var committed int64
		for _, p := range d.Partitions {
			if p.Committed != p.HighWatermark {
				return fmt.Errorf("partition %d: committed %d, high watermark %d", p.Partition, p.Committed, p.HighWatermark)
			}
			committed += p.Committed
		}
		if d.State != "running" || d.Lag != 0 || committed != in {
			return fmt.Errorf("state %s, lag %d, committed %d of %d", d.State, d.Lag, committed, in)
		}
		return nil
	})
	return d
}

// topicEnd is the sum of a topic's high watermarks: how many records it
// holds (nothing is deleted in these tests).
func topicEnd(t *testing.T, c *client.Client, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := c.ListOffsets(ctx, topic, client.AtEnd())
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, o := range offs {
		sum += o.Offset
	}
	return sum
}

// values reads every record of topic (it holds want records) and returns
// their values, sorted.
func values(t *testing.T, c *client.Client, topic string, want int) []string {
	t.Helper()
	recs := pollAll(t, c, topic, 30*time.Second, func(r []*client.Record) bool { return len(r) >= want })
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, string(r.Value))
	}
	slices.Sort(out)
	return out
}

// countries produces records to an input topic, alternating the countries
// EU and US, numbered from 0 on.
type countries struct {
	topic    string
	produced int
}

// produce writes n more records and returns the values of the EU and the
// US ones.
func (cs *countries) produce(t *testing.T, c *client.Client, n int) (eu, us []string) {
	t.Helper()
	var recs []*client.Record
	first := cs.produced
	cs.produced += n
	for i := first; i < first+n; i++ {
		country := "EU"
		if i%2 == 1 {
			country = "US"
		}
		v := fmt.Sprintf(`{"country":%q,"n":%04d}`, country, i)
		recs = append(recs, &client.Record{Topic: cs.topic, Key: fmt.Appendf(nil, "k%d", i), Value: []byte(v)})
		if country == "EU" {
			eu = append(eu, v)
		} else {
			us = append(us, v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	return eu, us
}

// follower is a running `wisp fn logs NAME -f`.
type follower struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan error
}

func startFollower(t *testing.T, n *testnode.Node, name string) *follower {
	t.Helper()
	f := &follower{cmd: exec.Command(testnode.Binary(t), "fn", "logs", name, "-f"), done: make(chan error, 1)}
	f.cmd.Env = cliEnv(t, n)
	stdout, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	f.cmd.Stderr = &stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f.mu.Lock()
			f.out.WriteString(sc.Text() + "\n")
			f.mu.Unlock()
		}
		err := f.cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		f.done <- err
	}()
	t.Cleanup(func() {
		_ = f.cmd.Process.Kill()
	})
	return f
}

func (f *follower) output() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.String()
}

// waitFor waits until the follower printed every one of texts.
func (f *follower) waitFor(t *testing.T, texts ...string) {
	t.Helper()
	checkFor(t, 30*time.Second, func() error {
		out := f.output()
		for _, s := range texts {
			if !strings.Contains(out, s) {
				return fmt.Errorf("fn logs -f has not printed %q yet; so far:\n%s", s, out)
			}
		}
		return nil
	})
}

// TestFunctionsCLI runs the filter example through the real CLI and node:
// deploy from the start of a topic with records, outputs exactly the
// matching records, list/describe/logs (and logs -f), pause (lag grows,
// nothing processed) and resume, a clean restart and a SIGKILL restart
// (the function resumes without reprocessing or skipping: the output
// holds each matching record exactly once), rejected deploys with a clear
// message, a redeploy that continues from the committed offsets, and
// delete.
func TestFunctionsCLI(t *testing.T) {
	filter := writeModule(t, "examples/filter")
	n := testnode.Start(t)
	c := newClient(t, n)
	const in, out, fn = "events", "eu-events", "only-eu"
	createTopic(t, c, in, 2)
	input := &countries{topic: in}
	var want []string // what the output must hold, sorted
	expect := func(vs []string) {
		want = append(want, vs...)
		slices.Sort(want)
	}

	// Records from before the deploy: --from start reads them.
	eu, _ := input.produce(t, c, 20)
	expect(eu)
	res := mustWisp(t, n, "", "fn", "deploy", fn, "--module", filter, "--input", in, "--output", out,
		"--env", "FIELD=country", "--env", "MATCH=EU", "--from", "start", "--memory", "32MiB", "--timeout", "2s",
		"--dlq", "events-dlq")
	if !strings.Contains(res.stdout, `deployed function "only-eu" version 1`) {
		t.Fatalf("deploy output: %s", res)
	}
	logs := startFollower(t, n, fn)
	eu, _ = input.produce(t, c, 20)
	expect(eu)
	caughtUp(t, n, fn, 40)
	if got := values(t, c, out, len(want)); !slices.Equal(got, want) {
		t.Fatalf("outputs:\n got %q\nwant %q", got, want)
	}

	// list, text and JSON.
	fns := fnList(t, n)
	if len(fns) != 1 || fns[0].Name != fn || fns[0].Input != in || !slices.Equal(fns[0].Outputs, []string{out}) ||
		fns[0].State != "running" || fns[0].RecordsIn != 40 || fns[0].RecordsOut != 20 || fns[0].Errors != 0 || fns[0].Lag != 0 {
		t.Fatalf("fn list: %+v", fns)
	}
	res = mustWisp(t, n, "", "fn", "list")
	for _, s := range []string{"NAME", "INPUT", "OUTPUTS", "STATE", "LAG", fn, in, out, "running"} {
		if !strings.Contains(res.stdout, s) {
			t.Fatalf("fn list lacks %q:\n%s", s, res.stdout)
		}
	}
	// describe: the manifest as deployed, each partition committed at its
	// high watermark.
	d := fnDescribe(t, n, fn)
	if d.Spec.MemoryMB != 32 || d.Spec.Timeout != 2*time.Second || d.Spec.Env["MATCH"] != "EU" || d.DLQ != "events-dlq" ||
		d.Group != "wisp.fn."+fn || len(d.Partitions) != 2 || d.Version != 1 {
		t.Fatalf("fn describe: %+v", d)
	}
	res = mustWisp(t, n, "", "fn", "describe", fn)
	for _, s := range []string{"PARTITION", "COMMITTED", "HIGH-WATERMARK", "memory 32MiB, timeout 2s", "FIELD=country MATCH=EU"} {
		if !strings.Contains(res.stdout, s) {
			t.Fatalf("fn describe lacks %q:\n%s", s, res.stdout)
		}
	}
	res = mustWisp(t, n, "", "fn", "logs", fn)
	if !strings.Contains(res.stdout, "version 1 deployed") {
		t.Fatalf("fn logs: %s", res)
	}

	// pause: new input waits (lag), resume processes it.
	mustWisp(t, n, "", "fn", "pause", fn)
	if fns := fnList(t, n); fns[0].State != "paused" {
		t.Fatalf("after pause: %+v", fns[0])
	}
	eu, _ = input.produce(t, c, 10)
	expect(eu)
	if d := fnDescribe(t, n, fn); d.Lag != 10 || d.State != "paused" {
		t.Fatalf("paused with 10 new records: lag %d, state %s", d.Lag, d.State)
	}
	mustWisp(t, n, "", "fn", "resume", fn)
	caughtUp(t, n, fn, 50)
	logs.waitFor(t, "version 1 deployed", "paused (was running)", "running (was paused)")
	// (The follower ends with the node below; TestFunctionsLogsFollowEndsOnDelete
	// checks the end of a follow.)

	// A clean restart, then a SIGKILL: the function comes back by itself
	// and continues where it was.
	for _, how := range []string{"stop", "kill"} {
		if how == "stop" {
			n.Stop(t)
		} else {
			n.Kill(t)
		}
		n.Restart(t)
		c = newClient(t, n)
		if fns := fnList(t, n); len(fns) != 1 || fns[0].State != "running" || fns[0].Version != 1 {
			t.Fatalf("after %s and restart: %+v", how, fns)
		}
		eu, _ = input.produce(t, c, 10)
		expect(eu)
		caughtUp(t, n, fn, int64(input.produced))
		if end := topicEnd(t, c, out); end != int64(len(want)) {
			t.Fatalf("after %s and restart: %s holds %d records, want %d (reprocessed or skipped)", how, out, end, len(want))
		}
		if got := values(t, c, out, len(want)); !slices.Equal(got, want) {
			t.Fatalf("after %s and restart, outputs:\n got %q\nwant %q", how, got, want)
		}
	}

	// Rejected deploys: not WebAssembly, a module without the ABI, a bad
	// manifest. Each says why; the running version is untouched.
	garbage := filepath.Join(t.TempDir(), "garbage.wasm")
	if err := os.WriteFile(garbage, []byte("not a module"), 0o644); err != nil {
		t.Fatal(err)
	}
	noABI := writeModule(t, "testdata/noexports")
	for _, tc := range []struct {
		module, output string
		says           []string
	}{
		{garbage, "x", []string{`deploy "only-eu" rejected`, "invalid module", "not a WebAssembly binary"}},
		{noABI, "x", []string{`deploy "only-eu" rejected`, "invalid module", "wisp_"}},
		{filter, in, []string{`deploy "only-eu" rejected`, "invalid manifest", "is the input topic"}},
	} {
		res := wisp(t, n, "", "fn", "deploy", fn, "--module", tc.module, "--input", in, "--output", tc.output)
		if res.code != 1 {
			t.Fatalf("bad deploy of %s: %s", tc.module, res)
		}
		for _, s := range tc.says {
			if !strings.Contains(res.stderr, s) {
				t.Fatalf("bad deploy of %s does not say %q: %s", tc.module, s, res)
			}
		}
		if strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 {
			t.Fatalf("error is not one line: %s", res)
		}
	}
	if fns := fnList(t, n); len(fns) != 1 || fns[0].Version != 1 || fns[0].State != "running" {
		t.Fatalf("after rejected deploys: %+v", fns)
	}
	if res := wisp(t, n, "", "fn", "deploy", fn, "--module", filter, "--input", in); res.code != 2 || !strings.Contains(res.stderr, "--output") {
		t.Fatalf("deploy without --output: %s", res)
	}

	// A redeploy with another module (transform, which passes these
	// records through unchanged) is version 2 and continues from the
	// committed offsets: only new records see it, each once.
	transform := writeModule(t, "examples/transform")
	mustWisp(t, n, "", "fn", "deploy", fn, "--module", transform, "--input", in, "--output", out)
	eu, us := input.produce(t, c, 10)
	expect(eu)
	expect(us)
	d2 := caughtUp(t, n, fn, int64(input.produced))
	if d2.Version != 2 || d2.Module == d.Module || len(d2.Module) != 64 {
		t.Fatalf("redeploy: version %d, module %s (was %s)", d2.Version, d2.Module, d.Module)
	}
	if got := values(t, c, out, len(want)); !slices.Equal(got, want) {
		t.Fatalf("after the redeploy, outputs:\n got %q\nwant %q", got, want)
	}

	// delete: gone from list and describe; the follower ends by itself.
	mustWisp(t, n, "", "fn", "delete", fn)
	if fns := fnList(t, n); len(fns) != 0 {
		t.Fatalf("after delete: %+v", fns)
	}
	if res := wisp(t, n, "", "fn", "describe", fn); res.code != 1 || !strings.Contains(res.stderr, `function "only-eu" does not exist`) {
		t.Fatalf("describe after delete: %s", res)
	}
}

// TestFunctionsLogsFollowEndsOnDelete: `wisp fn logs -f` prints new lines
// as they come and exits 0 when the function is deleted.
func TestFunctionsLogsFollowEndsOnDelete(t *testing.T) {
	filter := writeModule(t, "examples/filter")
	n := testnode.Start(t)
	mustWisp(t, n, "", "fn", "deploy", "f", "--module", filter, "--input", "a", "--output", "b")
	logs := startFollower(t, n, "f")
	logs.waitFor(t, "version 1 deployed")
	mustWisp(t, n, "", "fn", "pause", "f")
	logs.waitFor(t, "paused (was running)")
	mustWisp(t, n, "", "fn", "delete", "f")
	select {
	case err := <-logs.done:
		if err != nil {
			t.Fatalf("fn logs -f: %v\n%s", err, logs.output())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("fn logs -f still running after delete:\n%s", logs.output())
	}
}

// TestFunctionsTestCommand runs `wisp fn test` over NDJSON without a node.
func TestFunctionsTestCommand(t *testing.T) {
	transform := writeModule(t, "examples/transform")
	input := `{"key":"u1","value":{"email":"ann@example.com","n":1}}
{"value":"plain text"}
{"key":"u3","value":{"email":"bob@example.org"},"offset":42}
`
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testnode.Binary(t), "fn", "test", "--module", transform, "--output", "clean")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	cmd.Stdin = strings.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("wisp fn test: %v\n%s", err, stderr.String())
	}
	type line struct {
		Offset  int64             `json:"offset"`
		Topic   string            `json:"topic"`
		Key     *string           `json:"key"`
		Value   string            `json:"value"`
		Headers map[string]string `json:"headers"`
		Error   string            `json:"error"`
	}
	var got []line
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		got = append(got, l)
	}
	if len(got) != 3 {
		t.Fatalf("want 3 output lines, got %d:\n%s", len(got), stdout.String())
	}
	wantValues := []string{`{"email":"a***@example.com","n":1}`, "plain text", `{"email":"b***@example.org"}`}
	wantOffsets := []int64{0, 1, 42}
	for i, l := range got {
		if l.Value != wantValues[i] || l.Offset != wantOffsets[i] || l.Topic != "clean" || l.Error != "" {
			t.Fatalf("line %d: %+v, want value %s offset %d topic clean", i, l, wantValues[i], wantOffsets[i])
		}
	}
	if got[0].Headers["redacted"] != "1" || got[1].Headers["redacted"] != "" {
		t.Fatalf("headers: %+v / %+v", got[0].Headers, got[1].Headers)
	}

	// A module that is not one fails with a clear message, exit 1.
	garbage := filepath.Join(t.TempDir(), "garbage.wasm")
	if err := os.WriteFile(garbage, []byte("nope"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.CommandContext(ctx, testnode.Binary(t), "fn", "test", "--module", garbage)
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "invalid module") {
		t.Fatalf("fn test of garbage: %v\n%s", err, out)
	}
}

// multipartDeploy builds a POST /v1/functions body.
func multipartDeploy(t *testing.T, manifest string, module []byte) (string, *bytes.Buffer) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.WriteField("manifest", manifest); err != nil {
		t.Fatal(err)
	}
	fw, err := mw.CreateFormFile("module", "module.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(module); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), &body
}

// TestFunctionsHTTP deploys through POST /v1/functions and operates the
// function over HTTP, with records produced and read over HTTP.
func TestFunctionsHTTP(t *testing.T) {
	module := wasmtest.Build(t, "examples/transform")
	n := testnode.Start(t)
	post := func(manifest string, module []byte) (int, []byte) {
		ct, body := multipartDeploy(t, manifest, module)
		resp, err := http.Post("http://"+n.HTTP+"/v1/functions", ct, body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	status, body := post(`{"name":"mask","input":"signups","outputs":["clean"],"dlq":"signups-dlq","start":"start",
		"env":{"FIELDS":"email"},"limits":{"memory_mb":32,"timeout":"2s"}}`, module)
	if status != http.StatusCreated {
		t.Fatalf("deploy: %d %s", status, body)
	}
	var info client.FunctionInfo
	mustJSON(t, string(body), &info)
	if info.Name != "mask" || info.Version != 1 || info.State != "running" || len(info.Module) != 64 {
		t.Fatalf("deploy answer: %s", body)
	}

	status, _, body = httpDo(t, n, "POST", "/v1/topics/signups/records", "application/json",
		`{"records":[{"key":"a","value":{"email":"ann@example.com"}},{"key":"b","value":{"email":"bob@example.org"}}]}`)
	if status != http.StatusOK {
		t.Fatalf("produce: %d %s", status, body)
	}
	c := newClient(t, n)
	if got, want := values(t, c, "clean", 2), []string{`{"email":"a***@example.com"}`, `{"email":"b***@example.org"}`}; !slices.Equal(got, want) {
		t.Fatalf("outputs %q, want %q", got, want)
	}

	checkFor(t, 30*time.Second, func() error {
		status, _, body := httpDo(t, n, "GET", "/v1/functions", "", "")
		var list struct{ Functions []client.FunctionInfo }
		if err := json.Unmarshal(body, &list); err != nil || status != http.StatusOK {
			return fmt.Errorf("%d %s", status, body)
		}
		if len(list.Functions) != 1 || list.Functions[0].RecordsIn != 2 || list.Functions[0].Lag != 0 {
			return fmt.Errorf("list: %s", body)
		}
		return nil
	})
	status, _, body = httpDo(t, n, "GET", "/v1/functions/mask", "", "")
	var d client.FunctionDetail
	mustJSON(t, string(body), &d)
	if status != http.StatusOK || d.Spec.MemoryMB != 32 || d.Spec.Timeout != 2*time.Second || d.DLQ != "signups-dlq" || len(d.Partitions) == 0 {
		t.Fatalf("describe: %d %s", status, body)
	}
	status, _, body = httpDo(t, n, "GET", "/v1/functions/mask/logs?since=1h", "", "")
	if status != http.StatusOK || !strings.Contains(string(body), "version 1 deployed") {
		t.Fatalf("logs: %d %s", status, body)
	}
	for _, op := range []string{"pause", "resume"} {
		if status, _, body := httpDo(t, n, "POST", "/v1/functions/mask/"+op, "", ""); status != http.StatusNoContent {
			t.Fatalf("%s: %d %s", op, status, body)
		}
	}

	// The CLI sees what HTTP deployed.
	if fns := fnList(t, n); len(fns) != 1 || fns[0].Name != "mask" || fns[0].State != "running" {
		t.Fatalf("fn list: %+v", fns)
	}

	// Rejections: a module that is not one (422), no module (422), not
	// multipart (415), an unknown function (404).
	for _, tc := range []struct {
		status int
		code   string
		do     func() (int, []byte)
	}{
		{422, "42203", func() (int, []byte) { return post(`{"name":"bad","input":"x","outputs":["y"]}`, []byte("junk")) }},
		{422, "42203", func() (int, []byte) { return post(`{"name":"bad","input":"x","outputs":["x"]}`, module) }},
		{400, "40001", func() (int, []byte) { return post(`{"name":"bad","inptu":"x"}`, module) }},
		{415, "41501", func() (int, []byte) {
			s, _, b := httpDo(t, n, "POST", "/v1/functions", "application/json", `{}`)
			return s, b
		}},
		{404, "40403", func() (int, []byte) { s, _, b := httpDo(t, n, "GET", "/v1/functions/nope", "", ""); return s, b }},
		{404, "40403", func() (int, []byte) {
			s, _, b := httpDo(t, n, "POST", "/v1/functions/nope/pause", "", "")
			return s, b
		}},
	} {
		status, body := tc.do()
		if status != tc.status || !strings.Contains(string(body), tc.code) {
			t.Fatalf("want %d %s, got %d %s", tc.status, tc.code, status, body)
		}
	}

	if status, _, body := httpDo(t, n, "DELETE", "/v1/functions/mask", "", ""); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, body)
	}
	if status, _, _ := httpDo(t, n, "GET", "/v1/functions/mask", "", ""); status != http.StatusNotFound {
		t.Fatalf("after delete: %d", status)
	}
}
