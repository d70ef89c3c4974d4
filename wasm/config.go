package wasm

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"time"
)

// Config configures a Runtime.
type Config struct {
	// CacheDir holds compiled modules (wazero's compilation cache), so that
	// a restart does not compile again. "" keeps compiled code in memory only.
	CacheDir string
	// CompileWorkers is how many goroutines compile one module. Default
	// GOMAXPROCS.
	CompileWorkers int
	// Logger receives the runtime's own logs. Default: discarded.
	Logger *slog.Logger

	// deadlines picks how calls are interrupted; benchmarks compare them.
	deadlines deadlineMode
}

// deadlineMode is how a call past its deadline is stopped.
type deadlineMode uint8

const (
	// deadlineInstrument (the default): modules are rewritten with a
	// back-edge check of an interrupt global (internal/instrument).
	deadlineInstrument deadlineMode = iota
	// deadlineWazero: wazero's WithCloseOnContextDone.
	deadlineWazero
	// deadlineNone: calls cannot be interrupted (benchmarks only).
	deadlineNone
)

// Defaults of PoolConfig.
const (
	DefaultMemoryLimit  = 64 << 20
	DefaultTimeout      = 5 * time.Second
	DefaultMaxInstances = 4
	// MaxMemoryLimit is the largest linear memory of wasm32 (4 GiB).
	MaxMemoryLimit = 4 << 30
)

// PoolConfig configures the instances of one function. Zero fields take
// their defaults.
type PoolConfig struct {
	// Name appears in errors and as the module's argv[0].
	Name string
	// Env is the module's whole environment (WASI environ).
	Env map[string]string
	// MemoryLimit caps each instance's linear memory, in bytes (rounded down
	// to 64 KiB pages). Default DefaultMemoryLimit, at most MaxMemoryLimit.
	MemoryLimit uint64
	// Timeout is the deadline of each call. Default DefaultTimeout.
	Timeout time.Duration
	// InitTimeout bounds instantiation (the module's _initialize). Default
	// max(Timeout, 10s).
	InitTimeout time.Duration
	// MaxInstances bounds the live instances; Process waits for a free one
	// beyond it. Default DefaultMaxInstances.
	MaxInstances int
	// Stdout and Stderr receive what the module writes to fd 1 and 2; they
	// must be safe for concurrent use (instances run concurrently). Default:
	// discarded.
	Stdout, Stderr io.Writer
}

func (c PoolConfig) withDefaults() PoolConfig {
	if c.MemoryLimit == 0 {
		c.MemoryLimit = DefaultMemoryLimit
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.InitTimeout == 0 {
		c.InitTimeout = max(c.Timeout, 10*time.Second)
	}
	if c.MaxInstances == 0 {
		c.MaxInstances = DefaultMaxInstances
	}
	if c.Stdout == nil {
		c.Stdout = io.Discard
	}
	if c.Stderr == nil {
		c.Stderr = io.Discard
	}
	return c
}

// Validate checks the configuration (after defaults).
func (c PoolConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.MemoryLimit < 1<<16 || c.MemoryLimit > MaxMemoryLimit:
		return fmt.Errorf("wasm: memory limit %d bytes not in [64 KiB, 4 GiB]", c.MemoryLimit)
	case c.Timeout < 0 || c.InitTimeout < 0:
		return errors.New("wasm: negative timeout")
	case c.MaxInstances < 0:
		return errors.New("wasm: negative MaxInstances")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.CompileWorkers <= 0 {
		c.CompileWorkers = runtime.GOMAXPROCS(0)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
