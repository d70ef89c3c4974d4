// Command transform is a wisp function that redacts e-mail addresses in
// JSON records: "alice@example.com" becomes "a***@example.com". Records are
// otherwise passed through unchanged; a redacted record gets the header
// "redacted" with the number of fields it masked.
//
// Environment:
//
//	FIELDS  comma-separated fields to redact, dots for nesting; default "email"
//
// A record that is not JSON, or has none of the fields, passes unchanged.
package main

import (
	"bytes"
	"strconv"
	"strings"

	wisp "github.com/wispbus/wisp/sdk-wasm"
	"github.com/wispbus/wisp/sdk-wasm/jsonfield"
)

func init() {
	fields := wisp.Env("FIELDS")
	if fields == "" {
		fields = "email"
	}
	var paths [][]string
	for _, f := range strings.Split(fields, ",") {
		if f = strings.TrimSpace(f); f != "" {
			paths = append(paths, strings.Split(f, "."))
		}
	}
	wisp.Map(func(r wisp.Record) (wisp.Record, error) {
		value, n := r.Value, 0
		for _, p := range paths {
			start, end, ok := jsonfield.Span(value, p...)
			if !ok {
				continue
			}
			s, ok := jsonfield.Unquote(value[start:end])
			if !ok {
				continue
			}
			masked, ok := mask(s)
			if !ok {
				continue
			}
			// Splice into a fresh buffer: the input's bytes belong to the host.
			out := make([]byte, 0, len(value)-(end-start)+len(masked)+2)
			out = append(out, value[:start]...)
			out = jsonfield.Quote(out, masked)
			out = append(out, value[end:]...)
			value, n = out, n+1
		}
		if n == 0 {
			return r, nil
		}
		r.Value = value
		r.Headers = append(append([]wisp.Header(nil), r.Headers...),
			wisp.Header{Key: "redacted", Value: []byte(strconv.Itoa(n))})
		return r, nil
	})
}

// mask keeps the first character of the local part and the domain.
func mask(email string) (string, bool) {
	at := strings.LastIndexByte(email, '@')
	if at < 1 {
		return "", false
	}
	var b bytes.Buffer
	b.WriteString(email[:1])
	b.WriteString("***")
	b.WriteString(email[at:])
	return b.String(), true
}

func main() {}
