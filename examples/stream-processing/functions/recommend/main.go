// Command recommend is the second function of the stream-processing
// example: articles-enriched → recommendations.<category>. It forwards
// each enriched article unchanged (no copy: Route passes a reference to the
// input record) to the topic of its category, when that topic is one of
// the function's declared outputs; other categories are dropped.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o recommend.wasm .
package main

import (
	"strings"

	wisp "github.com/wispbus/wisp/sdk-wasm"
	"github.com/wispbus/wisp/sdk-wasm/jsonfield"
)

func init() {
	outputs := map[string]bool{}
	for _, t := range strings.Split(wisp.Env("WISP_OUTPUT_TOPICS"), ",") {
		outputs[t] = true
	}
	wisp.Route(func(r wisp.Record) string {
		category, ok := jsonfield.String(r.Value, "category")
		if !ok {
			return ""
		}
		if topic := "recommendations." + category; outputs[topic] {
			return topic
		}
		return ""
	})
}

func main() {}
