// Command router is a wisp function that sends each JSON record, unchanged,
// to an output topic chosen by one of its fields.
//
// Environment:
//
//	FIELD    the field to route by, dots for nesting; default "type"
//	ROUTES   value=topic pairs, comma-separated: "click=clicks,view=views"
//	DEFAULT  the topic for records matching no route; unset drops them
//
// Every topic named must be one of the function's declared outputs.
package main

import (
	"strings"

	wisp "github.com/wispbus/wisp/sdk-wasm"
	"github.com/wispbus/wisp/sdk-wasm/jsonfield"
)

func init() {
	field := wisp.Env("FIELD")
	if field == "" {
		field = "type"
	}
	path := strings.Split(field, ".")
	routes := map[string]string{}
	for _, pair := range strings.Split(wisp.Env("ROUTES"), ",") {
		value, topic, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && topic != "" {
			routes[value] = topic
		}
	}
	fallback := wisp.Env("DEFAULT")
	wisp.Route(func(r wisp.Record) string {
		raw, ok := jsonfield.Get(r.Value, path...)
		if !ok {
			return fallback
		}
		if len(raw) >= 2 && raw[0] == '"' {
			raw = raw[1 : len(raw)-1] // escapes are compared as written
		}
		if topic, ok := routes[string(raw)]; ok { // no allocation for the lookup
			return topic
		}
		return fallback
	})
}

func main() {}
