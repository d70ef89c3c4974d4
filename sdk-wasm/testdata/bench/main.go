// Command bench is the benchmark function. MODE selects the handler:
// filter keeps every record (forwarded), drop keeps none, route forwards
// each record to the topic named by ROUTE_TO, map copies each record
// through the encoder (the default), process does the same with
// Process/Write.
package main

import (
	wisp "github.com/wispbus/wisp/sdk-wasm"
)

func init() {
	switch wisp.Env("MODE") {
	case "filter":
		wisp.Filter(func(wisp.Record) bool { return true })
	case "drop":
		wisp.Filter(func(wisp.Record) bool { return false })
	case "route":
		to := wisp.Env("ROUTE_TO")
		wisp.Route(func(wisp.Record) string { return to })
	case "process":
		wisp.Process(func(r wisp.Record, out wisp.Writer) error { return out.Write(r) })
	default:
		wisp.Map(func(r wisp.Record) (wisp.Record, error) { return r, nil })
	}
}

func main() {}
