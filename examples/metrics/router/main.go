// Command router is the metrics example's wisp function: it reads raw
// points from "metrics-raw", drops the malformed ones and routes each good
// one, unchanged, to "metrics.<group>", where the group is the metric name
// up to its first dot (cpu.usage → metrics.cpu). A group with no declared
// output topic goes to $DEFAULT when set, else it is dropped.
//
// A point is
//
//	{"host":"web-1","name":"cpu.usage","kind":"gauge","value":42.5,"time":1709251200000}
//
// and it is malformed unless it is a JSON object with a non-empty string
// host, a name of [a-z0-9_.], kind "counter" or "gauge", a finite number
// value (not negative for a counter) and a number time.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o router.wasm .
package main

import (
	"math"
	"strconv"
	"strings"

	wisp "github.com/wispbus/wisp/sdk-wasm"
	"github.com/wispbus/wisp/sdk-wasm/jsonfield"
)

func init() {
	outputs := map[string]bool{}
	for _, t := range strings.Split(wisp.Env("WISP_OUTPUT_TOPICS"), ",") {
		outputs[t] = true
	}
	fallback := wisp.Env("DEFAULT")
	wisp.Route(func(r wisp.Record) string {
		name, why := check(r.Value)
		if why != "" {
			wisp.Logf("dropped malformed point %s/%d@%d: %s", r.Topic, r.Partition, r.Offset, why)
			return ""
		}
		group, _, _ := strings.Cut(name, ".")
		if topic := "metrics." + group; outputs[topic] {
			return topic
		}
		return fallback
	})
}

// check returns the point's name, or why the point is malformed.
func check(v []byte) (name, why string) {
	if len(v) == 0 || v[0] != '{' {
		return "", "not a JSON object"
	}
	host, ok := jsonfield.String(v, "host")
	if !ok || host == "" {
		return "", "no host"
	}
	name, ok = jsonfield.String(v, "name")
	if !ok || name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_.") != "" {
		return "", "bad name"
	}
	kind, _ := jsonfield.String(v, "kind")
	if kind != "counter" && kind != "gauge" {
		return "", "kind is not counter or gauge"
	}
	raw, ok := jsonfield.Get(v, "value")
	if !ok {
		return "", "no value"
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return "", "value is not a finite number"
	}
	if kind == "counter" && f < 0 {
		return "", "negative counter"
	}
	if raw, ok := jsonfield.Get(v, "time"); !ok {
		return "", "no time"
	} else if _, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
		return "", "time is not a number"
	}
	return name, ""
}

func main() {}
