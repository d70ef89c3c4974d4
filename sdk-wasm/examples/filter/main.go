// Command filter is a wisp function that keeps the records whose JSON field
// equals a value and drops the others.
//
// Environment (from the function's manifest):
//
//	FIELD  the field to compare, dots for nesting ("user.country"); default "type"
//	MATCH  the value to keep; a JSON string compares unquoted, a number,
//	       boolean or null by its JSON text ("42", "true")
//
// A record that is not a JSON object, or lacks the field, is dropped.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o filter.wasm .
//	wisp fn deploy only-eu --module filter.wasm --input events --output eu-events \
//	    --env FIELD=user.country --env MATCH=EU
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
	match, ok := wisp.LookupEnv("MATCH")
	if !ok {
		wisp.Logf("filter: MATCH is not set: every record is dropped")
	}
	wisp.Filter(func(r wisp.Record) bool {
		return ok && jsonfield.Equal(r.Value, match, path...)
	})
}

func main() {}
