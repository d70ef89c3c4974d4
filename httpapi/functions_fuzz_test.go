package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/functions"
)

// deployRecorder is a Functions that only records deploys.
type deployRecorder struct {
	calls  int
	module []byte
}

func (d *deployRecorder) Deploy(_ context.Context, m functions.Manifest, module []byte) (functions.Info, error) {
	d.calls++
	d.module = module
	return functions.Info{}, nil
}
func (d *deployRecorder) List() []functions.Info { return nil }
func (d *deployRecorder) Describe(string) (functions.Detail, error) {
	return functions.Detail{}, functions.ErrNotFound
}
func (d *deployRecorder) Logs(string, time.Time) ([]functions.LogLine, error) { return nil, nil }
func (d *deployRecorder) Pause(context.Context, string) error                 { return nil }
func (d *deployRecorder) Resume(context.Context, string) error                { return nil }
func (d *deployRecorder) Delete(context.Context, string) error                { return nil }

// FuzzFunctionDeploy posts arbitrary multipart bodies (boundary "B") to
// POST /v1/functions. The handler must never panic or answer 5xx: a bad
// body is a 4xx with a JSON error naming the problem, and Deploy is only
// called, with a non-empty module, when the answer is 201.
//
//	go test -run '^$' -fuzz '^FuzzFunctionDeploy$' -fuzztime 30s ./httpapi
func FuzzFunctionDeploy(f *testing.F) {
	part := func(name, body string) string {
		return "--B\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + body + "\r\n"
	}
	manifest := `{"name":"f","input":"a","outputs":["b"]}`
	for _, s := range []string{
		part("manifest", manifest) + part("module", "\x00asm\x01\x00\x00\x00") + "--B--\r\n",
		part("module", "\x00asm") + part("manifest", manifest) + "--B--\r\n",
		part("manifest", `{"name":"f","nope":1}`) + part("module", "m") + "--B--\r\n",
		part("manifest", manifest) + "--B--\r\n",
		part("other", "x") + "--B--\r\n",
		part("manifest", manifest) + part("module", "cut"),
		"--B--\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	bcfg := bus.DefaultConfig()
	bcfg.DataDir = f.TempDir()
	bcfg.Logger = quietLogger()
	b, err := bus.Open(bcfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	cfg := DefaultConfig()
	cfg.Logger = quietLogger()
	s, err := New(cfg, b)
	if err != nil {
		f.Fatal(err)
	}
	rec := &deployRecorder{}
	s.MountFunctions(rec)
	h := s.Handler()

	f.Fuzz(func(t *testing.T, body []byte) {
		before := rec.calls
		req := httptest.NewRequest(http.MethodPost, "/v1/functions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "multipart/form-data; boundary=B")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		deployed := rec.calls > before
		switch {
		case w.Code == http.StatusCreated:
			if !deployed || len(rec.module) == 0 {
				t.Fatalf("201 without a deploy of a module")
			}
		case w.Code >= 400 && w.Code < 500:
			if deployed {
				t.Fatalf("%d after a deploy", w.Code)
			}
			var e Error
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code == 0 || e.Message == "" {
				t.Fatalf("%d with an unclear error body %q", w.Code, w.Body.Bytes())
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body.Bytes())
		}
	})
}
