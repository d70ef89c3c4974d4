// Command bench is the benchmark function: MODE=filter keeps every record,
// map copies each record through the encoder, route forwards each record
// to the topic named by ROUTE_TO, process writes each record with
// Process/Write.
package main

import (
	wisp "github.com/wispbus/wisp/sdk-wasm"
)

func init() {
	switch wisp.Env("MODE") {
	case "drop":
		wisp.Filter(func(wisp.Record) bool { return false })
	case "filter":
		wisp.Filter(func(wisp.Record) bool { return true })
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
