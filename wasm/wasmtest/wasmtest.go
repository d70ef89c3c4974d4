// Package wasmtest builds wisp function modules from source for tests and
// benchmarks, with the Go toolchain that runs them:
//
//	bin := wasmtest.Build(t, "examples/filter") // sdk-wasm/examples/filter
//
// Builds are cached per test process (and by the go build cache across
// processes), so many tests can ask for the same module cheaply.
package wasmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

var (
	mu    sync.Mutex
	built = map[string][]byte{}
)

// SDKDir is the directory of the Go guest SDK (its own module).
func SDKDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "sdk-wasm")
}

// Build builds the package at pkg, a path relative to SDKDir such as
// "examples/router" or "testdata/evil", as a WASI reactor
// (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared) and returns the module.
func Build(tb testing.TB, pkg string) []byte {
	tb.Helper()
	return build(tb, pkg, true)
}

// BuildCommand builds pkg as a WASI command (no -buildmode=c-shared): a
// module with _start, which the host must reject.
func BuildCommand(tb testing.TB, pkg string) []byte {
	tb.Helper()
	return build(tb, pkg, false)
}

func build(tb testing.TB, pkg string, reactor bool) []byte {
	key := fmt.Sprintf("%s reactor=%v", pkg, reactor)
	mu.Lock()
	defer mu.Unlock() // one build at a time: the machine has two cores
	if bin, ok := built[key]; ok {
		return bin
	}
	out := filepath.Join(tb.TempDir(), "module.wasm")
	args := []string{"build", "-trimpath", "-buildvcs=false", "-o", out}
	if reactor {
		args = append(args, "-buildmode=c-shared")
	}
	args = append(args, "./"+filepath.ToSlash(pkg))
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = SDKDir()
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("wasmtest: go %v (in %s): %v\n%s", args, cmd.Dir, err, stderr.Bytes())
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	built[key] = bin
	return bin
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// CacheDir is a compilation cache directory (wasm.Config.CacheDir) kept
// across test runs: compiling a Go module takes a second, and ten or more
// under the race detector, so tests should not start from an empty cache
// each time. It is $WISP_TEST_WASM_CACHE, or a directory under the system
// temporary directory; entries unused for a week are removed.
func CacheDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("WISP_TEST_WASM_CACHE")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "wisp-wasm-test-cache")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	pruneOnce.Do(func() {
		old := time.Now().Add(-7 * 24 * time.Hour)
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if info, err := d.Info(); err == nil && info.ModTime().Before(old) {
					_ = os.Remove(p)
				}
			}
			return nil
		})
	})
	return dir
}

var pruneOnce sync.Once
