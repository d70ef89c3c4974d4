package functions

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzManifest decodes arbitrary manifest JSON, as `wisp fn deploy` (or any
// HTTP client) sends it, and validates it. Nothing may panic; a rejected
// manifest fails with ErrInvalidManifest; an accepted one survives a JSON
// round trip unchanged and validates again to itself (normalizing is
// idempotent), so what is stored is what is served after a restart.
//
//	go test -run '^$' -fuzz '^FuzzManifest$' -fuzztime 30s ./functions
func FuzzManifest(f *testing.F) {
	for _, s := range []string{
		`{"name":"enrich","input":"in","outputs":["out","out2","out"],"dlq":"dead","env":{"A":"1"},` +
			`"limits":{"memory_mb":32,"timeout":"2s","instances":2,"retries":1,"max_failures":3},"start":"@2024-01-02T03:04:05Z"}`,
		`{"name":"f","input":"a","outputs":["b"],"limits":{"timeout":1500},"start":"42"}`,
		`{"name":"f","input":"a","outputs":["b"],"start":"@1700000000000"}`,
		`{"name":"f","input":"a","outputs":["a"]}`,
		`{"name":"f","input":"a","outputs":["b"],"env":{"WISP_X":"1","":"2"}}`,
		`{"name":"f","input":"a","outputs":["b"],"limits":{"timeout":"-1s","memory_mb":99999}}`,
		`{"name":"../x","input":"a","outputs":[]}`,
		`{"limits":null}`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			return
		}
		n, err := m.normalized()
		if err != nil {
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("rejected without ErrInvalidManifest: %v", err)
			}
			return
		}
		if n.Limits.MemoryMB <= 0 || n.Limits.Timeout <= 0 || n.Limits.Instances <= 0 || len(n.Outputs) == 0 {
			t.Fatalf("accepted manifest without its defaults: %+v", n)
		}
		if _, err := parseStart(n.Start); err != nil {
			t.Fatalf("accepted start %q does not parse: %v", n.Start, err)
		}
		b, err := json.Marshal(n)
		if err != nil {
			t.Fatalf("marshal accepted manifest: %v", err)
		}
		var back Manifest
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("stored manifest %s does not decode: %v", b, err)
		}
		again, err := back.normalized()
		if err != nil {
			t.Fatalf("stored manifest %s no longer validates: %v", b, err)
		}
		// "env":{} is stored without the field (omitempty): both mean
		// no environment.
		if len(n.Env) == 0 {
			n.Env, again.Env = nil, nil
		}
		if !reflect.DeepEqual(again, n) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", n, again)
		}
	})
}
