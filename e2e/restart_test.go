package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/internal/testnode"
)

// TestKillAndRestart: a producer writes with acks=all (ProduceSync) while
// the node is SIGKILLed; after a restart on the same data directory every
// record that was acknowledged before the crash is there, and producing
// goes on.
//
// The producer of the crash is closed rather than left to reconnect: a
// client only notices that a SIGKILLed node is gone at the QUIC idle
// timeout (30s), as neither in-flight produce requests time out nor does
// the restarted node reset the old connection (no stateless reset key).
func TestKillAndRestart(t *testing.T) {
	n := testnode.Start(t)
	c := newClient(t, n, client.RequestTimeout(2*time.Second))
	const topic, parts = "durable", 2
	createTopic(t, c, topic, parts)

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		stop  atomic.Bool
	)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	produce := func(c *client.Client, batch int) error {
		recs := make([]*client.Record, 10)
		for j := range recs {
			recs[j] = &client.Record{Topic: topic, Key: []byte(strconv.Itoa(j)),
				Value: []byte(fmt.Sprintf("%d-%d", batch, j)), Offset: -1}
		}
		err := c.ProduceSync(context.Background(), recs...)
		mu.Lock()
		defer mu.Unlock()
		for _, r := range recs {
			// ProduceSync fills in the offset of each record written;
			// after an error, those without one are not acknowledged.
			if err == nil || r.Offset >= 0 {
				acked[string(r.Value)] = true
			}
		}
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; !stop.Load(); i++ {
			if err := produce(c, i); err != nil {
				t.Logf("batch %d: %v", i, err)
				return
			}
		}
	}()

	checkFor(t, 20*time.Second, func() error {
		if k := count(); k < 300 {
			return fmt.Errorf("%d records acknowledged", k)
		}
		return nil
	})
	n.Kill(t)
	stop.Store(true)
	beforeKill := count()
	// Close fails what is still waiting for an answer from the dead node.
	c.Close()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("ProduceSync still blocked 15s after the client was closed")
	}
	t.Logf("%d records acknowledged before the kill", beforeKill)

	n.Restart(t)
	c2 := newClient(t, n)
	for i := range 30 {
		if err := produce(c2, 1_000_000+i); err != nil {
			t.Fatalf("produce after restart: %v", err)
		}
	}

	got := map[string]int{}
	read := 0
	pollAll(t, c2, topic, 30*time.Second, func(rs []*client.Record) bool {
		for _, r := range rs[read:] {
			got[string(r.Value)]++
		}
		read = len(rs)
		mu.Lock()
		defer mu.Unlock()
		for v := range acked {
			if got[v] == 0 {
				return false
			}
		}
		return true
	})
	dups := 0
	for _, k := range got {
		dups += k - 1
	}
	t.Logf("%d records acknowledged in all; read back %d distinct, %d duplicates", count(), len(got), dups)
}

// TestCleanStop: SIGINT makes wisp serve log its shutdown and exit 0
// quickly, with data intact for the next start.
func TestCleanStop(t *testing.T) {
	n := testnode.Start(t)
	c := newClient(t, n)
	createTopic(t, c, "kept", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ProduceSync(ctx, &client.Record{Topic: "kept", Value: []byte("before stop")}); err != nil {
		t.Fatal(err)
	}
	c.Close()

	start := time.Now()
	n.Stop(t)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("SIGINT took %v to stop the node", d)
	}
	logs := n.Logs()
	for _, s := range []string{"shutting down", "stopped"} {
		if !strings.Contains(logs, s) {
			t.Errorf("log lacks %q:\n%s", s, logs)
		}
	}
	n.Restart(t)
	res := mustWisp(t, n, "", "consume", "kept", "-e")
	if res.stdout != "before stop\n" {
		t.Fatalf("after restart: %s", res)
	}
}

// TestCleanStopExitCode runs wisp serve directly (testnode does not expose
// the exit status): SIGINT ends it with status 0.
func TestCleanStopExitCode(t *testing.T) {
	dir := t.TempDir()
	httpAddr := testnode.FreeTCP(t)
	cmd := exec.Command(testnode.Binary(t), "serve", "--data", dir, "--quic", testnode.FreeUDP(t),
		"--kafka", testnode.FreeTCP(t), "--http", httpAddr)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	checkFor(t, 20*time.Second, func() error {
		select {
		case err := <-exited:
			exited <- err
			return nil
		default:
		}
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %d", resp.StatusCode)
		}
		return nil
	})
	start := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("wisp serve exited with %v after SIGINT\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		t.Fatalf("wisp serve still running 10s after SIGINT\n%s", logs.String())
	}
	t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(logs.String(), "shutting down") {
		t.Errorf("no shutdown in the log:\n%s", logs.String())
	}
}
