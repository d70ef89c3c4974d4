package commitlog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/examples/internal/extest"
	"github.com/wispbus/wisp/internal/testnode"
)

// TestScenario: two replicas follow the compacted topic "kv"; writers put
// and delete keys; replica B is SIGKILLed, more changes land while it is
// down, and it rebuilds to the same state as A; then the node itself
// restarts and a fresh replica C rebuilds the same state from disk.
func TestScenario(t *testing.T) {
	n := extest.Node(t)
	bins := extest.Build(t, "examples/commit-log/kv")
	kv := bins["kv"]
	extest.Wisp(t, n, "", "topic", "create", "kv", "-p", "3", "-c", "cleanup.policy=compact", "-c", "segment.ms=10000")

	want := map[string]string{}
	put := func(pairs ...string) {
		t.Helper()
		extest.Run(t, n, "", kv, append([]string{"put"}, pairs...)...)
		for _, p := range pairs {
			k, v, _ := strings.Cut(p, "=")
			want[k] = v
		}
	}
	del := func(keys ...string) {
		t.Helper()
		extest.Run(t, n, "", kv, append([]string{"del"}, keys...)...)
		for _, k := range keys {
			delete(want, k)
		}
	}
	var pairs []string
	for i := range 30 {
		pairs = append(pairs, fmt.Sprintf("user:%02d=v1-%d", i, i))
	}
	put(pairs...)

	addrA, addrB := testnode.FreeTCP(t), testnode.FreeTCP(t)
	a := extest.Start(t, n, kv, "serve", "-addr", addrA)
	b := extest.Start(t, n, kv, "serve", "-addr", addrB)
	converged(t, addrA, want)
	converged(t, addrB, want)

	// Changes through a replica's HTTP: read-your-writes on that replica.
	httpDo(t, "PUT", addrA, "/kv/user:05", "v2-5", http.StatusNoContent)
	want["user:05"] = "v2-5"
	if got := httpDo(t, "GET", addrA, "/kv/user:05", "", http.StatusOK); got != "v2-5" {
		t.Fatalf("A right after its own PUT: %q", got)
	}
	httpDo(t, "DELETE", addrB, "/kv/user:06", "", http.StatusNoContent)
	delete(want, "user:06")
	httpDo(t, "GET", addrB, "/kv/user:06", "", http.StatusNotFound)
	del("user:07", "user:08")
	put("user:09=v2-9", "user:10=v2-10")
	converged(t, addrA, want)
	converged(t, addrB, want)

	// B crashes; writers carry on.
	b.Kill()
	del("user:00", "user:01", "user:02")
	put("user:03=v3-3", "user:99=new", "user:01=back")
	converged(t, addrA, want)

	// B restarts with nothing but the log and catches up.
	b = extest.Start(t, n, kv, "serve", "-addr", addrB)
	converged(t, addrB, want)
	extest.CheckFor(t, 10*time.Second, func() error {
		if !strings.Contains(b.Output(), fmt.Sprintf("replica ready: %d keys rebuilt", len(want))) {
			return fmt.Errorf("B printed %q", b.Output())
		}
		return nil
	})

	// The node restarts; the log is on disk. A fresh replica C rebuilds.
	a.Stop(t)
	b.Stop(t)
	n.Stop(t)
	n.Restart(t)
	addrC := testnode.FreeTCP(t)
	extest.Start(t, n, kv, "serve", "-addr", addrC)
	converged(t, addrC, want)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.New(ctx, client.Servers(n.QUIC))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	info, err := cl.DescribeTopic(ctx, "kv")
	if err != nil {
		t.Fatal(err)
	}
	if info.Effective["cleanup.policy"] != "compact" {
		t.Errorf("kv has cleanup.policy=%q", info.Effective["cleanup.policy"])
	}
	t.Logf("%d live keys", len(want))
}

// converged polls the replica at addr until its whole state is want.
func converged(t *testing.T, addr string, want map[string]string) {
	t.Helper()
	extest.CheckFor(t, 30*time.Second, func() error {
		resp, err := http.Get("http://" + addr + "/kv")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var got map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			return err
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("replica %s has %d keys %v, want %d keys %v", addr, len(got), got, len(want), want)
		}
		return nil
	})
}

func httpDo(t *testing.T, method, addr, path, body string, status int) string {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: %s %s, want %d", method, path, resp.Status, b, status)
	}
	return string(b)
}

// TestScenarioCluster runs the store on a three-node cluster: kv is
// replicated three ways, and the broker nodes themselves crash. The store's
// replicas know every node (WISP_SERVER lists them all) and follow the
// partitions' leaders; acknowledged writes survive the loss of a leader,
// and a broker that comes back resyncs its copy of the log.
func TestScenarioCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster scenario: skipped in -short")
	}
	c := testnode.StartCluster(t, 3, "--functions=false")
	bins := extest.Build(t, "examples/commit-log/kv")
	kv := bins["kv"]
	env := extest.Env(t, c.Node(1))
	for i, kv := range env {
		if strings.HasPrefix(kv, "WISP_SERVER=") {
			env[i] = "WISP_SERVER=" + c.Servers()
		}
	}
	extest.Wisp(t, c.Node(1), "", "topic", "create", "kv", "-p", "3", "-r", "3", "-c", "cleanup.policy=compact")

	want := map[string]string{}
	put := func(pairs ...string) {
		t.Helper()
		p := extest.StartEnv(t, env, kv, append([]string{"put"}, pairs...)...)
		p.Wait(t, time.Minute)
		for _, p := range pairs {
			k, v, _ := strings.Cut(p, "=")
			want[k] = v
		}
	}
	var pairs []string
	for i := range 20 {
		pairs = append(pairs, fmt.Sprintf("user:%02d=v1-%d", i, i))
	}
	put(pairs...)
	addrA, addrB := testnode.FreeTCP(t), testnode.FreeTCP(t)
	extest.StartEnv(t, env, kv, "serve", "-addr", addrA)
	extest.StartEnv(t, env, kv, "serve", "-addr", addrB)
	converged(t, addrA, want)
	converged(t, addrB, want)

	// Each broker in turn is killed while writes go on, then restarted.
	for id := int32(1); id <= 3; id++ {
		c.Node(id).Kill(t)
		put(fmt.Sprintf("user:%02d=down-%d", id, id), fmt.Sprintf("user:5%d=while-%d-down", id, id))
		httpDo(t, "PUT", addrA, fmt.Sprintf("/kv/user:1%d", id), fmt.Sprintf("via-a-%d", id), http.StatusNoContent)
		want[fmt.Sprintf("user:1%d", id)] = fmt.Sprintf("via-a-%d", id)
		converged(t, addrA, want)
		converged(t, addrB, want)
		c.Node(id).Restart(t)
		inSync(t, c.Node(id))
	}

	// A fresh replica rebuilds the same state from the replicated log.
	addrC := testnode.FreeTCP(t)
	extest.StartEnv(t, env, kv, "serve", "-addr", addrC)
	converged(t, addrC, want)
	t.Logf("%d live keys after killing each of three brokers", len(want))
}

// inSync waits until every partition of kv has all three replicas in sync,
// as node n sees it.
func inSync(t *testing.T, n *testnode.Node) {
	t.Helper()
	extest.CheckFor(t, 30*time.Second, func() error {
		out, _, err := extest.RunErr(t, n, "", testnode.Binary(t), "topic", "describe", "kv", "--format", "json")
		if err != nil {
			return err
		}
		var d struct {
			Partitions []struct {
				ISR []int32 `json:"isr"`
			} `json:"partitions"`
		}
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			return err
		}
		for i, p := range d.Partitions {
			if len(p.ISR) != 3 {
				return fmt.Errorf("partition %d has ISR %v", i, p.ISR)
			}
		}
		return nil
	})
}
