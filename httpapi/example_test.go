package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/httpapi"
)

// Serve a broker over HTTP and produce one JSON record to an auto-created
// topic.
func Example() {
	dir, err := os.MkdirTemp("", "wisp-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	bcfg := bus.DefaultConfig()
	bcfg.DataDir, bcfg.Logger = dir, quiet
	b, err := bus.Open(bcfg)
	if err != nil {
		panic(err)
	}
	defer b.Close()

	cfg := httpapi.DefaultConfig()
	cfg.Addr, cfg.Logger = "127.0.0.1:0", quiet // any free port
	s, err := httpapi.New(cfg, b)
	if err != nil {
		panic(err)
	}
	if err := s.Start(); err != nil {
		panic(err)
	}
	defer s.Close(context.Background())

	resp, err := http.Post("http://"+s.Addr().String()+"/v1/topics/clicks/records", "application/json",
		strings.NewReader(`{"records":[{"key":"user-1","value":{"page":"/buy"}}]}`))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.StatusCode, " ", string(body))
	// Output: 200 {"offsets":[{"partition":0,"offset":0}]}
}
