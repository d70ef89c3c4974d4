package wasm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/sys"
)

// Errors a batch can fail with. Process wraps them with detail; test with
// errors.Is.
var (
	// ErrInvalidModule: the module does not compile, lacks an ABI export,
	// has the wrong signature or ABI version, imports something the host
	// does not provide, or fails its first call. Returned at deploy.
	ErrInvalidModule = errors.New("wasm: invalid module")
	// ErrTimeout: a call ran past its deadline and the instance was stopped.
	ErrTimeout = errors.New("wasm: deadline exceeded")
	// ErrMemoryLimit: the instance tried to grow its memory past the limit.
	ErrMemoryLimit = errors.New("wasm: memory limit exceeded")
	// ErrTrap: the module trapped (unreachable, out-of-bounds access,
	// division by zero, stack overflow, ...).
	ErrTrap = errors.New("wasm: trap")
	// ErrExit: the module called proc_exit (a Go module does so on an
	// unrecovered panic or a fatal runtime error).
	ErrExit = errors.New("wasm: module exited")
	// ErrMalformed: the module's output does not follow the ABI.
	ErrMalformed = errors.New("wasm: malformed output")
	// ErrBatch: the module reported the whole batch as failed (status 1).
	ErrBatch = errors.New("wasm: batch failed")
	// ErrClosed: the pool or runtime is closed.
	ErrClosed = errors.New("wasm: closed")
)

// IsModuleFailure reports whether err is the module's fault (as opposed to
// the caller's context ending or the pool closing): the cases a host
// retries, bisects and dead-letters.
func IsModuleFailure(err error) bool {
	if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) {
		return false
	}
	return errors.Is(err, ErrTimeout) || errors.Is(err, ErrMemoryLimit) || errors.Is(err, ErrTrap) ||
		errors.Is(err, ErrExit) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrBatch) ||
		errors.Is(err, ErrInvalidModule)
}

// classify turns a wazero call error into one of the errors above. ctx is
// the caller's context (without the call deadline), inst the instance that
// failed, fired why its interrupt was raised (nil if it was not).
func classify(ctx context.Context, inst *instance, err, fired error, timeout time.Duration) error {
	switch {
	case inst != nil && inst.memory.refused:
		return fmt.Errorf("%w (%d MiB)", ErrMemoryLimit, inst.memory.limit>>20)
	case errors.Is(fired, ErrTimeout):
		return fmt.Errorf("%w after %s", ErrTimeout, timeout)
	case fired != nil:
		return fired // the caller's context ended
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w after %s", ErrTimeout, timeout)
		case sys.ExitCodeContextCanceled:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return context.Canceled
		}
		return fmt.Errorf("%w with code %d", ErrExit, exit.ExitCode())
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 { // drop wazero's stack trace
		msg = msg[:i]
	}
	return fmt.Errorf("%w: %s", ErrTrap, strings.TrimPrefix(msg, "wasm error: "))
}
