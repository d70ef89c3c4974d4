package activity_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/examples/internal/extest"
	"github.com/wispbus/wisp/internal/testnode"
)

// TestScenario: the site publishes two load runs of 500 requests each
// (300 page views, 150 searches, 50 clicks per run) through the HTTP
// produce endpoint; the topics must hold exactly those events; the
// kafka-python consumer must count them exactly; the export must write
// every search once, and only the second run's with -from.
func TestScenario(t *testing.T) {
	n := extest.Node(t)
	bins := extest.Build(t, "examples/activity-tracking/site", "examples/activity-tracking/load", "examples/activity-tracking/export")
	for _, topic := range []string{"page-views", "searches", "clicks"} {
		extest.Wisp(t, n, "", "topic", "create", topic, "-p", "3")
	}
	siteAddr := testnode.FreeTCP(t)
	site := extest.Start(t, n, bins["site"], "-addr", siteAddr, "-wisp", "http://"+n.HTTP)
	extest.WaitHTTP(t, "http://"+siteAddr+"/stats", 20*time.Second)

	published := func(views, searches, clicks int) {
		t.Helper()
		want := map[string]int{"page-views": views, "searches": searches, "clicks": clicks}
		extest.CheckFor(t, 30*time.Second, func() error {
			resp, err := http.Get("http://" + siteAddr + "/stats")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var got map[string]int
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				return err
			}
			for k, v := range want {
				if got[k] != v || got["failed"] != 0 {
					return fmt.Errorf("site published %v, want %v", got, want)
				}
			}
			return nil
		})
	}
	load := func(first int) {
		t.Helper()
		out := extest.Run(t, n, "", bins["load"], "-site", "http://"+siteAddr, "-n", "500", "-first", fmt.Sprint(first), "-c", "8")
		if !strings.Contains(out, "sent views=300 searches=150 clicks=50 failed=0") {
			t.Fatalf("load: %s", out)
		}
	}
	load(0)
	published(300, 150, 50)
	// A boundary between the runs, for the export by time.
	boundary := time.Now().Add(2 * time.Millisecond)
	extest.CheckFor(t, time.Second, func() error {
		if time.Now().Before(boundary) {
			return fmt.Errorf("before the boundary")
		}
		return nil
	})
	load(500)
	published(600, 300, 100)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Servers(n.QUIC))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for topic, want := range map[string]int64{"page-views": 600, "searches": 300, "clicks": 100} {
		offs, err := cl.ListOffsets(ctx, topic, client.AtEnd())
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, o := range offs {
			sum += o.Offset
		}
		if sum != want {
			t.Errorf("%s holds %d events, want %d", topic, sum, want)
		}
	}

	t.Run("export", func(t *testing.T) {
		all := filepath.Join(t.TempDir(), "all")
		if out := extest.Run(t, n, "", bins["export"], "-topic", "searches", "-out", all); !strings.Contains(out, "exported 300 records") {
			t.Fatalf("export: %s", out)
		}
		lines := readExport(t, all, 3)
		if len(lines) != 300 {
			t.Fatalf("exported %d searches, want 300", len(lines))
		}
		next := map[int32]int64{}
		users := map[string]bool{}
		for _, l := range lines {
			if l.Offset != next[l.Partition] {
				t.Fatalf("partition %d: offset %d after %d", l.Partition, l.Offset, next[l.Partition]-1)
			}
			next[l.Partition]++
			if l.Value.Type != "search" || l.Value.Query == "" || l.Key != l.Value.User || l.Timestamp != l.Value.Time {
				t.Fatalf("exported line %+v", l)
			}
			users[l.Key] = true
		}
		if len(users) != 15 { // user-(i%50) for i%10 in 6,7,8: 5 × 3
			t.Errorf("searches by %d users, want 15", len(users))
		}

		second := filepath.Join(t.TempDir(), "second")
		out := extest.Run(t, n, "", bins["export"], "-topic", "searches", "-out", second, "-from", boundary.UTC().Format(time.RFC3339Nano))
		if !strings.Contains(out, "exported 150 records") {
			t.Fatalf("export -from: %s", out)
		}
		for _, l := range readExport(t, second, 3) {
			if l.Timestamp < boundary.UnixMilli() {
				t.Fatalf("exported a search from before the boundary: %+v", l)
			}
		}
	})

	t.Run("kafka-python counts", func(t *testing.T) {
		py := extest.Python(t)
		out := extest.Run(t, n, "", py, "counts.py", "--bootstrap", n.Kafka, "--expect", "1000", "--timeout", "60")
		if !strings.Contains(out, "total views=600 searches=300 clicks=100 users=50\n") {
			t.Fatalf("counts.py printed:\n%s", out)
		}
		offs, err := cl.GroupOffsets(ctx, "live-counts")
		if err != nil {
			t.Fatal(err)
		}
		var committed int64
		for _, o := range offs {
			committed += o.Committed
		}
		if committed != 1000 {
			t.Errorf("group live-counts committed %d events, want 1000: %+v", committed, offs)
		}
	})

	site.Stop(t)
	if !strings.Contains(site.Output(), "published map[clicks:100 page-views:600 searches:300]") {
		t.Errorf("site at exit: %s", site.Output())
	}
}

type exported struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Timestamp int64  `json:"timestamp"`
	Key       string `json:"key"`
	Value     struct {
		Type  string `json:"type"`
		User  string `json:"user"`
		Query string `json:"query"`
		Time  int64  `json:"time"`
	} `json:"value"`
}

// readExport reads the files export wrote to dir, which must be files
// of the searches topic's partitions.
func readExport(t *testing.T, dir string, partitions int) []exported {
	t.Helper()
	var out []exported
	for p := range partitions {
		f, err := os.Open(filepath.Join(dir, fmt.Sprintf("searches-%d.ndjson", p)))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var l exported
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("%s: %v: %s", f.Name(), err, sc.Text())
			}
			if l.Partition != int32(p) {
				t.Fatalf("%s has a record of partition %d", f.Name(), l.Partition)
			}
			out = append(out, l)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
