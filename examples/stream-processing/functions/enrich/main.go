// Command enrich is the first function of the stream-processing example:
// articles → articles-enriched. For each article
//
//	{"id":"a1","title":"Go 1.24 ships","body":"... #golang #wasm ..."}
//
// it drops spam and writes
//
//	{"id":"a1","title":"Go 1.24 ships","category":"tech","tags":["golang","wasm"],"words":42}
//
// keyed by the id. Tags are the body's #hashtags (lower case, first
// occurrence order, no repeats); the category is that of the first tag
// that has one (see categories), else "general". Spam is an article whose
// title or body contains a phrase of spamPhrases, or more than three links.
//
// It is deterministic (no clock, no randomness), which is what makes the
// bus's exactly-once outputs hold across crashes: a replayed batch yields
// the same records, which the output partitions recognise as duplicates.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o enrich.wasm .
package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	wisp "github.com/wispbus/wisp/sdk-wasm"
)

var categories = map[string]string{
	"golang": "tech", "rust": "tech", "wasm": "tech", "ai": "tech", "cloud": "tech", "kafka": "tech",
	"football": "sports", "tennis": "sports", "olympics": "sports", "cycling": "sports",
	"space": "science", "physics": "science", "biology": "science", "climate": "science",
}

var spamPhrases = []string{"buy now", "free money", "click here", "casino bonus"}

type article struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Body  string `json:"body"`
}

type enriched struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Category string   `json:"category"`
	Tags     []string `json:"tags"`
	Words    int      `json:"words"`
}

func init() {
	wisp.Process(func(rec wisp.Record, out wisp.Writer) error {
		var a article
		if err := json.Unmarshal(rec.Value, &a); err != nil || a.ID == "" {
			// Not an article: fail it, so that it goes to the dead-letter
			// topic (when one is configured) with the error in a header.
			return fmt.Errorf("not an article: %v", err)
		}
		if spam(a) {
			wisp.Logf("dropped spam %s: %q", a.ID, a.Title)
			return nil
		}
		e := enriched{ID: a.ID, Title: a.Title, Category: "general", Tags: tags(a.Body), Words: len(strings.Fields(a.Body))}
		for _, t := range e.Tags {
			if c, ok := categories[t]; ok {
				e.Category = c
				break
			}
		}
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return out.Write(wisp.Record{Key: []byte(a.ID), Value: v, Timestamp: rec.Timestamp})
	})
}

func spam(a article) bool {
	text := strings.ToLower(a.Title + " " + a.Body)
	for _, p := range spamPhrases {
		if strings.Contains(text, p) {
			return true
		}
	}
	return strings.Count(text, "http://")+strings.Count(text, "https://") > 3
}

func tags(body string) []string {
	tags := []string{}
	for _, w := range strings.Fields(body) {
		if len(w) < 2 || w[0] != '#' {
			continue
		}
		t := strings.ToLower(strings.TrimRightFunc(w[1:], func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }))
		if t != "" && !contains(tags, t) {
			tags = append(tags, t)
		}
	}
	return tags
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func main() {}
