package streamprocessing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/examples/internal/extest"
)

type enriched struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Category string   `json:"category"`
	Tags     []string `json:"tags"`
	Words    int      `json:"words"`
}

// TestScenario: articles → enrich (WASM) → articles-enriched → recommend
// (WASM) → recommendations.<category>. Half the articles are published,
// the node is SIGKILLed at once (the functions may be mid-stream) and
// restarted, the other half is published. Every non-spam article must come
// out exactly once, with its tags, in its category's topic; spam and the
// "general" category nowhere; a malformed record in the dead-letter topic.
func TestScenario(t *testing.T) {
	articles := 400
	if testing.Short() {
		articles = 200
	}
	n := extest.Node(t)
	bins := extest.Build(t, "examples/stream-processing/publish", "examples/stream-processing/reader")
	enrich := extest.BuildWasm(t, "examples/stream-processing/functions/enrich")
	recommend := extest.BuildWasm(t, "examples/stream-processing/functions/recommend")
	extest.Wisp(t, n, "", "topic", "create", "articles", "-p", "3")
	extest.Wisp(t, n, "", "topic", "create", "articles-enriched", "-p", "3")
	for _, c := range []string{"tech", "sports", "science"} {
		extest.Wisp(t, n, "", "topic", "create", "recommendations."+c, "-p", "2")
	}
	extest.Wisp(t, n, "", "fn", "deploy", "enrich", "--module", enrich, "--input", "articles",
		"--output", "articles-enriched", "--dlq", "articles-dlq", "--from", "start")
	extest.Wisp(t, n, "", "fn", "deploy", "recommend", "--module", recommend, "--input", "articles-enriched",
		"--output", "recommendations.tech", "--output", "recommendations.sports", "--output", "recommendations.science", "--from", "start")

	// Article i: category by i%4 (general has no topic), spam when i%10 == 9.
	tagsOf := [][]string{{"golang", "cloud"}, {"football"}, {"space", "physics"}, {"community"}}
	catOf := []string{"tech", "sports", "science", "general"}
	want := map[string]enriched{} // id → what must come out
	var lines []string
	for i := range articles {
		id := fmt.Sprintf("art-%04d", i)
		c := i % 4
		title := fmt.Sprintf("Article %d", i)
		body := "Some words about it. #" + strings.Join(tagsOf[c], " #") + " #" + strings.ToUpper(tagsOf[c][0])
		if i%10 == 9 {
			title = "Buy now: article " + fmt.Sprint(i)
		} else if c != 3 {
			want[id] = enriched{ID: id, Title: title, Category: catOf[c], Tags: tagsOf[c], Words: len(strings.Fields(body))}
		}
		b, _ := json.Marshal(map[string]string{"id": id, "title": title, "body": body})
		lines = append(lines, string(b))
	}
	nonSpam := articles - articles/10

	half := articles / 2
	extest.Run(t, n, strings.Join(lines[:half], "\n")+"\n", bins["publish"])
	pre, err := client.New(context.Background(), client.Servers(n.QUIC))
	if err != nil {
		t.Fatal(err)
	}
	before := topicEnd(t, context.Background(), pre, "articles-enriched")
	pre.Close()
	n.Kill(t) // the functions may still be working through the first half
	t.Logf("node killed with %d of the first half's %d enriched articles written", before, half-half/10)
	n.Restart(t)
	extest.Run(t, n, strings.Join(lines[half:], "\n")+"\n", bins["publish"])
	extest.Wisp(t, n, "this is not an article\n", "produce", "articles")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Servers(n.QUIC))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	caughtUp(t, ctx, cl, "enrich", int64(articles+1))
	caughtUp(t, ctx, cl, "recommend", int64(nonSpam))

	if got := topicEnd(t, ctx, cl, "articles-enriched"); got != int64(nonSpam) {
		t.Errorf("articles-enriched holds %d records, want %d (one per non-spam article)", got, nonSpam)
	}
	perCat := map[string]int64{}
	for _, w := range want {
		perCat[w.Category]++
	}
	for _, c := range []string{"tech", "sports", "science"} {
		if got := topicEnd(t, ctx, cl, "recommendations."+c); got != perCat[c] {
			t.Errorf("recommendations.%s holds %d records, want %d", c, got, perCat[c])
		}
	}
	if got := topicEnd(t, ctx, cl, "articles-dlq"); got != 1 {
		t.Errorf("articles-dlq holds %d records, want the 1 malformed one", got)
	}

	out := extest.Run(t, n, "", bins["reader"], "-e", "-json")
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			Topic   string   `json:"topic"`
			Article enriched `json:"article"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("reader line %q: %v", l, err)
		}
		a := r.Article
		w, ok := want[a.ID]
		switch {
		case seen[a.ID]:
			t.Errorf("%s read twice", a.ID)
		case !ok:
			t.Errorf("%s should not be recommended (spam or general): %s", a.ID, l)
		case r.Topic != "recommendations."+w.Category || a.Category != w.Category || a.Title != w.Title ||
			!slices.Equal(a.Tags, w.Tags) || a.Words != w.Words:
			t.Errorf("%s: read %+v from %s, want %+v", a.ID, a, r.Topic, w)
		}
		seen[a.ID] = true
	}
	if len(seen) != len(want) {
		t.Errorf("reader saw %d articles, want %d", len(seen), len(want))
	}
}

// caughtUp waits until the function has committed all in input records.
func caughtUp(t *testing.T, ctx context.Context, cl *client.Client, name string, in int64) {
	t.Helper()
	extest.CheckFor(t, 60*time.Second, func() error {
		d, err := cl.DescribeFunction(ctx, name)
		if err != nil {
			return err
		}
		var committed int64
		for _, p := range d.Partitions {
			committed += p.Committed
		}
		if d.State != "running" || d.Lag != 0 || committed != in {
			return fmt.Errorf("%s: state %s (%s), lag %d, committed %d of %d", name, d.State, d.Error, d.Lag, committed, in)
		}
		return nil
	})
}

func topicEnd(t *testing.T, ctx context.Context, cl *client.Client, topic string) int64 {
	t.Helper()
	offs, err := cl.ListOffsets(ctx, topic, client.AtEnd())
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, o := range offs {
		sum += o.Offset
	}
	return sum
}
