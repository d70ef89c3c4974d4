package functions

import (
	"testing"

	"github.com/wispbus/wisp/internal/batch"
)

// FuzzTestLine parses arbitrary input lines of `wisp fn test` (NDJSON
// records). Nothing may panic, and a line that parses gives a record that
// goes into a batch and comes back out with the same key, value and
// headers.
//
//	go test -run '^$' -fuzz '^FuzzTestLine$' -fuzztime 30s ./functions
func FuzzTestLine(f *testing.F) {
	for _, s := range []string{
		`{"key":"k","value":{"a":[1,2]},"headers":{"h":"x","n":1},"timestamp":1700000000000}`,
		`{"key":"AP8=","key_format":"binary","value":"aGk=","value_format":"base64","headers":[{"key":"h","value":null}],"timestamp":"2024-01-02T03:04:05.5Z","offset":7,"partition":2,"topic":"t"}`,
		`{"value":"x","value_format":"hex"}`,
		`{"value":"x","timestamp":"yesterday"}`,
		`{"value":"x","headers":7}`,
		`{"nope":1}`,
		`null`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		_, _, rec, err := parseTestLine(line, 3)
		if err != nil {
			return
		}
		rec.Offset = 0
		b, err := batch.Build(batch.NoProducer, []batch.Record{rec})
		if err != nil {
			t.Fatalf("parsed record does not build: %v", err)
		}
		back, err := batch.Records(b)
		if err != nil || len(back) != 1 {
			t.Fatalf("records: %v, %d", err, len(back))
		}
		if string(back[0].Key) != string(rec.Key) || string(back[0].Value) != string(rec.Value) || len(back[0].Headers) != len(rec.Headers) {
			t.Fatalf("record changed in the batch: %+v, %+v", rec, back[0])
		}
	})
}
