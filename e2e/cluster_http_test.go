package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wispbus/wisp/internal/testnode"
)

// TestClusterHTTPProduceAnyNode posts records for every partition of a
// replicated topic to each node's HTTP endpoint in turn: a node that does
// not lead a partition produces its records on the leader, so every record
// is acknowledged with its real offset and can be read back in order.
func TestClusterHTTPProduceAnyNode(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped in -short")
	}
	c := testnode.StartCluster(t, 3, "--functions=false")
	mustWisp(t, c.Node(1), "", "topic", "create", "clicks", "-p", "3", "-r", "3")
	waitPartitions(t, c.Node(1), "clicks", "three partitions in sync", func(ps []partitionState) bool {
		return len(ps) == 3 && allISR(ps, 3)
	})

	type report struct {
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
		ErrorCode int    `json:"error_code"`
		Error     string `json:"error"`
	}
	want := map[string]report{} // value -> where it was acknowledged
	for i, n := range c.Nodes {
		var body struct {
			Records []map[string]any `json:"records"`
		}
		for p := range 3 {
			for k := range 5 {
				body.Records = append(body.Records, map[string]any{"partition": p, "value": fmt.Sprintf("n%d-p%d-%d", i+1, p, k)})
			}
		}
		raw, _ := json.Marshal(body)
		resp, err := http.Post("http://"+n.HTTP+"/v1/topics/clicks/records", "application/json", bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Offsets []report `json:"offsets"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(out.Offsets) != len(body.Records) {
			t.Fatalf("POST to node %d: status %d, %+v (%v)", i+1, resp.StatusCode, out, err)
		}
		for j, r := range out.Offsets {
			if r.ErrorCode != 0 || r.Offset < 0 {
				t.Fatalf("node %d: record %d not acknowledged: %+v", i+1, j, r)
			}
			want[body.Records[j]["value"].(string)] = r
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaBrokers()...), kgo.ConsumeTopics("clicks"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := 0
	for got < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read back %d of %d records", got, len(want))
		}
		fs.EachRecord(func(r *kgo.Record) {
			w, ok := want[string(r.Value)]
			if !ok || w.Partition != r.Partition || w.Offset != r.Offset {
				t.Errorf("record %s at %d/%d, acknowledged at %+v (%v)", r.Value, r.Partition, r.Offset, w, ok)
			}
			got++
		})
	}
}
