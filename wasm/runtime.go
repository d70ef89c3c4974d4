package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wispbus/wisp/wasm/internal/instrument"
)

// Runtime compiles and runs function modules. One per node; safe for
// concurrent use.
type Runtime struct {
	cfg    Config
	rt     wazero.Runtime
	cache  wazero.CompilationCache
	logger *slog.Logger

	mu      sync.Mutex // guards modules and closed
	modules map[string]*Module
	closed  bool
}

// NewRuntime creates the runtime, with its compilation cache in
// cfg.CacheDir when set.
func NewRuntime(ctx context.Context, cfg Config) (*Runtime, error) {
	cfg = cfg.withDefaults()
	rc := wazero.NewRuntimeConfigCompiler().
		WithCloseOnContextDone(cfg.deadlines == deadlineWazero).
		WithCoreFeatures(api.CoreFeaturesV2).
		WithDebugInfoEnabled(false)
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("wasm: cache dir: %w", err)
		}
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(cfg.CacheDir); err != nil {
			return nil, fmt.Errorf("wasm: cache dir: %w", err)
		}
		rc = rc.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("wasm: wasi: %w", err)
	}
	return &Runtime{cfg: cfg, rt: rt, cache: cache, logger: cfg.Logger, modules: map[string]*Module{}}, nil
}

// Close closes every module and pool of the runtime.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	err := r.rt.Close(ctx)
	if r.cache != nil {
		if cerr := r.cache.Close(ctx); err == nil {
			err = cerr
		}
	}
	return err
}

// Hash is the content address of a module binary: hex SHA-256.
func Hash(bin []byte) string {
	sum := sha256.Sum256(bin)
	return hex.EncodeToString(sum[:])
}

// Module is a compiled module. Compiling the same bytes again returns the
// same Module (with one more reference); Close releases a reference.
type Module struct {
	rt       *Runtime
	cm       wazero.CompiledModule
	hash     string
	initFn   bool // exports _initialize (a WASI reactor)
	startFn  bool // had a start section, now exported as instrument.StartExport
	minPages uint32
	refs     int // guarded by rt.mu
}

// Hash is the module's content address (hex SHA-256 of its bytes).
func (m *Module) Hash() string { return m.hash }

// Compile compiles bin, or finds it already compiled, and checks that it
// has the shape of docs/abi.md. Errors wrap ErrInvalidModule with a reason
// meant for the person deploying it.
func (r *Runtime) Compile(ctx context.Context, bin []byte) (*Module, error) {
	hash := Hash(bin)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	if m, ok := r.modules[hash]; ok {
		m.refs++
		r.mu.Unlock()
		return m, nil
	}
	r.mu.Unlock()

	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return nil, fmt.Errorf("%w: not a WebAssembly binary (no \\0asm header)", ErrInvalidModule)
	}
	// Check the imports and exports before spending a second compiling.
	sh, err := instrument.Inspect(bin)
	if err != nil {
		return nil, fmt.Errorf("%w: does not compile: %v", ErrInvalidModule, err)
	}
	if err := checkExports(sh); err != nil {
		return nil, err
	}
	code := bin
	if r.cfg.deadlines == deadlineInstrument {
		if code, err = instrument.Rewrite(bin); err != nil {
			return nil, fmt.Errorf("%w: does not compile: %v", ErrInvalidModule, err)
		}
	}
	cctx := experimental.WithCompilationWorkers(ctx, r.cfg.CompileWorkers)
	cm, err := r.rt.CompileModule(cctx, code)
	if err != nil {
		return nil, fmt.Errorf("%w: does not compile: %v", ErrInvalidModule, err)
	}
	m := &Module{rt: r, cm: cm, hash: hash, refs: 1}
	if err := m.checkShape(); err != nil {
		cm.Close(ctx)
		return nil, err
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.modules[hash]; ok { // compiled concurrently: keep one
		prev.refs++
		cm.Close(ctx)
		return prev, nil
	}
	r.modules[hash] = m
	return m, nil
}

// Close releases one reference; the compiled code is dropped with the last.
// Pools made from the module must be closed first.
func (m *Module) Close(ctx context.Context) error {
	r := m.rt
	r.mu.Lock()
	m.refs--
	last := m.refs == 0
	if last {
		delete(r.modules, m.hash)
	}
	closed := r.closed
	r.mu.Unlock()
	if last && !closed {
		return m.cm.Close(ctx)
	}
	return nil
}

// abiExports are the functions of docs/abi.md with their signatures.
var abiExports = []struct {
	name            string
	params, results []api.ValueType
}{
	{"wisp_abi_version", nil, []api.ValueType{api.ValueTypeI32}},
	{"wisp_buffer", []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
	{"wisp_process", []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}},
}

// checkExports applies the checks of docs/abi.md that need no compilation.
func checkExports(sh instrument.Shape) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidModule, fmt.Sprintf(format, args...))
	}
	if _, ok := sh.Exports["_start"]; ok {
		return bad("it is a WASI command (exports _start): build a reactor, e.g. GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared")
	}
	var missing []string
	for _, want := range abiExports {
		if kind, ok := sh.Exports[want.name]; !ok || kind != instrument.KindFunc {
			missing = append(missing, want.name)
		}
	}
	if len(missing) > 0 {
		return bad("missing the wisp ABI export(s) %s: is it built with the wisp SDK (docs/abi.md)?", strings.Join(missing, ", "))
	}
	if kind, ok := sh.Exports["memory"]; !ok || kind != instrument.KindMemory {
		return bad("no exported memory named \"memory\"")
	}
	for _, imp := range sh.Imports {
		if !strings.HasPrefix(imp, wasi_snapshot_preview1.ModuleName+".") {
			return bad("imports %s; only %s functions are provided", imp, wasi_snapshot_preview1.ModuleName)
		}
	}
	return nil
}

func (m *Module) checkShape() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidModule, fmt.Sprintf(format, args...))
	}
	exports := m.cm.ExportedFunctions()
	if _, ok := exports["_start"]; ok {
		return bad("it is a WASI command (exports _start): build a reactor, e.g. GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared")
	}
	var missing []string
	for _, want := range abiExports {
		f, ok := exports[want.name]
		if !ok {
			missing = append(missing, want.name)
			continue
		}
		if !slices.Equal(f.ParamTypes(), want.params) || !slices.Equal(f.ResultTypes(), want.results) {
			return bad("export %s has signature %s, want %s", want.name,
				signature(f.ParamTypes(), f.ResultTypes()), signature(want.params, want.results))
		}
	}
	if len(missing) > 0 {
		return bad("missing the wisp ABI export(s) %s: is it built with the wisp SDK (docs/abi.md)?", strings.Join(missing, ", "))
	}
	if f, ok := exports["_initialize"]; ok {
		if len(f.ParamTypes()) != 0 || len(f.ResultTypes()) != 0 {
			return bad("export _initialize must take and return nothing")
		}
		m.initFn = true
	}
	_, m.startFn = exports[instrument.StartExport]
	mem, ok := m.cm.ExportedMemories()["memory"]
	if !ok {
		return bad("no exported memory named \"memory\"")
	}
	m.minPages = mem.Min()
	for _, f := range m.cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod != wasi_snapshot_preview1.ModuleName {
			return bad("imports %s.%s; only %s functions are provided", mod, name, wasi_snapshot_preview1.ModuleName)
		}
	}
	if len(m.cm.ImportedMemories()) > 0 {
		return bad("imports a memory; it must define and export its own")
	}
	return nil
}

func signature(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return strings.Join(s, ", ")
	}
	return "(" + names(params) + ") -> (" + names(results) + ")"
}
