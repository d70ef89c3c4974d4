package functions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/wasm"
	"github.com/wispbus/wisp/wasm/wasmtest"
)

// checkExactlyOnce verifies that out holds every input value exactly once.
func checkExactlyOnce(t *testing.T, in []string, out []rec) {
	t.Helper()
	got := sorted(values(out))
	want := sorted(in)
	if slices.Equal(got, want) {
		return
	}
	seen := map[string]int{}
	for _, v := range got {
		seen[v]++
	}
	var dups, missing []string
	for _, v := range want {
		switch seen[v] {
		case 0:
			missing = append(missing, v)
		case 1:
		default:
			dups = append(dups, fmt.Sprintf("%s x%d", v, seen[v]))
		}
	}
	t.Fatalf("%d outputs for %d inputs: duplicated %v, missing %v", len(got), len(want), dups, missing)
}

// TestRestart closes the broker and the manager mid-stream and reopens
// them: nothing is lost or written twice.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir, func(c *Config) { c.MaxBatchRecords = 10 })
	n.createTopic("in", 3)
	n.deploy(Manifest{Name: "copy", Input: "in", Outputs: []string{"out"}, Start: "start", Env: map[string]string{"MODE": "map"}}, "testdata/bench")
	var all []string
	for p := int32(0); p < 3; p++ {
		vals := seq(fmt.Sprintf("a%d-", p), 60)
		all = append(all, vals...)
		for i := 0; i < len(vals); i += 15 {
			n.produce("in", p, vals[i:i+15]...)
		}
	}
	waitFor(t, 30*time.Second, "some progress", func() bool { return len(n.consume("out")) > 30 })
	n.close()

	n = openNode(t, dir, func(c *Config) { c.MaxBatchRecords = 10 })
	for p := int32(0); p < 3; p++ {
		vals := seq(fmt.Sprintf("b%d-", p), 20)
		all = append(all, vals...)
		n.produce("in", p, vals...)
	}
	n.waitCaughtUp("copy")
	checkExactlyOnce(t, all, n.consume("out"))
}

// TestCrashBetweenWriteAndCommit stops a worker as if its process died
// right after it wrote a unit's outputs and before it committed: the
// restarted worker replays the unit, and the output partitions drop the
// replayed batches as duplicates.
func TestCrashBetweenWriteAndCommit(t *testing.T) {
	dir := t.TempDir()
	var writes atomic.Int32
	testHookAfterWrite = func(fn string, p int32) error {
		if p == 0 && writes.Add(1) == 3 {
			return errCrash
		}
		return nil
	}
	n := openNode(t, dir, func(c *Config) { c.MaxBatchRecords = 7 })
	n.createTopic("in", 2)
	n.createTopic("out", 3)
	var all []string
	for p := int32(0); p < 2; p++ {
		for chunk := 0; chunk < 5; chunk++ {
			vals := seq(fmt.Sprintf("p%d-c%d-", p, chunk), 10)
			// Keys spread each unit's outputs over several output partitions.
			keyed := make([]string, len(vals))
			for i, v := range vals {
				keyed[i] = fmt.Sprintf("k%d=%s", i, v)
			}
			all = append(all, vals...)
			n.produce("in", p, keyed...)
		}
	}
	n.deploy(Manifest{Name: "copy", Input: "in", Outputs: []string{"out"}, Start: "start", Env: map[string]string{"MODE": "map"}}, "testdata/bench")
	waitFor(t, 30*time.Second, "the crash", func() bool { return writes.Load() >= 3 })
	waitFor(t, 30*time.Second, "partition 1", func() bool {
		d, _ := n.m.Describe("copy")
		return len(d.Partitions) == 2 && d.Partitions[1].Lag == 0
	})
	d, _ := n.m.Describe("copy")
	if d.Partitions[0].PendingEnd == 0 {
		t.Fatalf("no unit pending on partition 0 after the crash: %+v", d.Partitions[0])
	}
	n.close()
	testHookAfterWrite = nil

	n = openNode(t, dir)
	n.waitCaughtUp("copy")
	checkExactlyOnce(t, all, n.consume("out"))
	logs, _ := n.m.Logs("copy", time.Time{})
	found := false
	for _, l := range logs {
		found = found || strings.Contains(l.Text, "resuming the unit")
	}
	if !found {
		t.Error("no replay was logged")
	}
}

// The child process of TestKillExactlyOnce.
const (
	childEnv       = "WISP_FN_TEST_CHILD"
	childDirEnv    = "WISP_FN_TEST_DIR"
	childModuleEnv = "WISP_FN_TEST_MODULE"
	childKillEnv   = "WISP_FN_TEST_KILL_AFTER"
	childCacheEnv  = "WISP_FN_TEST_CACHE"
)

// runChild opens a node on the parent's data directory, deploys the copy
// function and SIGKILLs itself right after the Nth unit is written.
func runChild() int {
	dir := os.Getenv(childDirEnv)
	killAfter, _ := strconv.Atoi(os.Getenv(childKillEnv))
	bin, err := os.ReadFile(os.Getenv(childModuleEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var writes atomic.Int32
	testHookAfterWrite = func(string, int32) error {
		if int(writes.Add(1)) == killAfter {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return nil
	}
	bcfg := bus.DefaultConfig()
	bcfg.DataDir = dir
	bcfg.Logger = slog.New(slog.DiscardHandler)
	b, err := bus.Open(bcfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg := testConfig(dir)
	cfg.MaxBatchRecords = 5
	if cfg.Runtime, err = wasm.NewRuntime(context.Background(), wasm.Config{CacheDir: os.Getenv(childCacheEnv)}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	m, err := Open(cfg, b)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	_, err = m.Deploy(context.Background(), Manifest{Name: "copy", Input: "in", Outputs: []string{"out"}, Start: "start",
		Env: map[string]string{"MODE": "map"}}, bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	time.Sleep(2 * time.Minute)
	fmt.Fprintln(os.Stderr, "child: not killed")
	return 3
}

// TestKillExactlyOnce SIGKILLs a real process (broker and functions) right
// after it wrote a unit's outputs, with other partitions anywhere in their
// units, and checks that the restarted node writes every output once.
func TestKillExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	n := openNode(t, dir)
	n.createTopic("in", 3)
	n.createTopic("out", 2)
	var all []string
	for p := int32(0); p < 3; p++ {
		for chunk := 0; chunk < 4; chunk++ {
			vals := seq(fmt.Sprintf("p%d-c%d-", p, chunk), 10)
			all = append(all, vals...)
			n.produce("in", p, vals...)
		}
	}
	n.close()
	modPath := filepath.Join(t.TempDir(), "copy.wasm")
	if err := os.WriteFile(modPath, module(t, "testdata/bench"), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childDirEnv+"="+dir, childModuleEnv+"="+modPath, childKillEnv+"=9", childCacheEnv+"="+wasmtest.CacheDir(t))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !exit.Sys().(syscall.WaitStatus).Signaled() {
		t.Fatalf("child was not killed: %v\n%s", err, out)
	}

	n = openNode(t, dir)
	info := n.waitCaughtUp("copy")
	checkExactlyOnce(t, all, n.consume("out"))
	if info.Version != 1 {
		t.Errorf("version %d", info.Version)
	}
}
