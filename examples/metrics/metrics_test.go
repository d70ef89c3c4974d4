package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/examples/internal/extest"
)

type row struct {
	Minute string  `json:"minute"`
	Name   string  `json:"name"`
	Kind   string  `json:"kind"`
	Points int     `json:"points"`
	Sum    float64 `json:"sum"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Hosts  int     `json:"hosts"`
}

// TestScenario: a fleet of simulated servers pushes points, some
// malformed, to metrics-raw; the WASM router drops the malformed ones and
// routes the rest by name; the aggregator's per-minute table must equal
// the one computed here from the servers' documented formulas.
func TestScenario(t *testing.T) {
	servers, rounds, badEvery := 12, 18, 7 // 18 rounds of 10s: minutes 10:00, 10:01, 10:02
	if testing.Short() {
		servers, rounds = 8, 12
	}
	n := extest.Node(t)
	bins := extest.Build(t, "examples/metrics/servers", "examples/metrics/aggregate")
	module := extest.BuildWasm(t, "examples/metrics/router")
	extest.Wisp(t, n, "", "topic", "create", "metrics-raw", "-p", "2")
	extest.Wisp(t, n, "", "fn", "deploy", "metrics-router", "--module", module, "--input", "metrics-raw",
		"--output", "metrics.cpu", "--output", "metrics.mem", "--output", "metrics.http", "--from", "start")

	// What the aggregation must be, from the formulas in servers/main.go.
	want := map[string]*row{}
	good, total := 0, servers*rounds*3
	t0 := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	hosts := map[string]map[int]bool{}
	for s := range servers {
		for k := range rounds {
			minute := t0.Add(time.Duration(k) * 10 * time.Second).Truncate(time.Minute).Format("2006-01-02 15:04")
			for m, p := range []struct {
				name, kind string
				v          int
			}{{"cpu.usage", "gauge", (7*s + 3*k) % 100}, {"mem.free", "gauge", 1000 + 10*s + k}, {"http.requests", "counter", s + k + 1}} {
				if (s+3*k+m)%badEvery == badEvery-1 {
					continue // malformed: dropped by the function
				}
				good++
				key := minute + " " + p.name
				r := want[key]
				if r == nil {
					r = &row{Minute: minute, Name: p.name, Kind: p.kind, Min: math.Inf(1), Max: math.Inf(-1)}
					want[key] = r
					hosts[key] = map[int]bool{}
				}
				r.Points++
				r.Sum += float64(p.v)
				r.Min, r.Max = min(r.Min, float64(p.v)), max(r.Max, float64(p.v))
				hosts[key][s] = true
				r.Hosts = len(hosts[key])
			}
		}
	}

	out := extest.Run(t, n, "", bins["servers"], "-n", fmt.Sprint(servers), "-points", fmt.Sprint(rounds), "-bad-every", fmt.Sprint(badEvery))
	if wantOut := fmt.Sprintf("pushed %d points from %d servers (%d malformed, 0 failed)", total, servers, total-good); !strings.Contains(out, wantOut) {
		t.Fatalf("servers: %q, want %q", out, wantOut)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Servers(n.QUIC))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// The function has read every point.
	extest.CheckFor(t, 60*time.Second, func() error {
		d, err := cl.DescribeFunction(ctx, "metrics-router")
		if err != nil {
			return err
		}
		var committed int64
		for _, p := range d.Partitions {
			committed += p.Committed
		}
		if d.State != "running" || d.Lag != 0 || committed != int64(total) {
			return fmt.Errorf("state %s (%s), lag %d, committed %d of %d", d.State, d.Error, d.Lag, committed, total)
		}
		return nil
	})
	// Exactly the good points reached the outputs, each in its group.
	perTopic := map[string]int64{}
	for _, r := range want {
		group, _, _ := strings.Cut(r.Name, ".")
		perTopic["metrics."+group] += int64(r.Points)
	}
	for topic, w := range perTopic {
		offs, err := cl.ListOffsets(ctx, topic, client.AtEnd())
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, o := range offs {
			sum += o.Offset
		}
		if sum != w {
			t.Errorf("%s holds %d points, want %d", topic, sum, w)
		}
	}

	stdout, stderr, err := extest.RunErr(t, n, "", bins["aggregate"], "-e", "-json")
	if err != nil {
		t.Fatalf("aggregate: %v\n%s", err, stderr)
	}
	if wantErr := fmt.Sprintf("aggregated %d points (0 unparseable)", good); !strings.Contains(stderr, wantErr) {
		t.Fatalf("aggregate: %q, want %q", stderr, wantErr)
	}
	got := map[string]row{}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var r row
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("aggregate line %q: %v", l, err)
		}
		got[r.Minute+" "+r.Name] = r
	}
	if len(got) != len(want) {
		t.Errorf("%d rows, want %d", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || g.Kind != w.Kind || g.Points != w.Points || g.Hosts != w.Hosts ||
			math.Abs(g.Sum-w.Sum) > 1e-9 || g.Min != w.Min || g.Max != w.Max {
			t.Errorf("%s: got %+v, want %+v", k, g, *w)
		}
	}

	logs, err := cl.FunctionLogs(ctx, "metrics-router", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	dropped := 0
	for _, l := range logs {
		if strings.Contains(l.Text, "dropped malformed point") {
			dropped++
		}
	}
	if dropped != total-good {
		t.Errorf("function log reports %d dropped points, want %d", dropped, total-good)
	}
	t.Logf("%d points, %d malformed dropped, %d rows", total, total-good, len(got))
}
