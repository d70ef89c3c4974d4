package functions

import "errors"

// Errors of the Manager API. Deploy also returns errors wrapping
// wasm.ErrInvalidModule for a module that is rejected, and the broker's
// kerr values for topics that cannot be created.
var (
	// ErrNotFound: no function has that name.
	ErrNotFound = errors.New("functions: no such function")
	// ErrInvalidManifest: the manifest is incomplete or contradictory.
	ErrInvalidManifest = errors.New("functions: invalid manifest")
	// ErrClosed: the manager is closed.
	ErrClosed = errors.New("functions: manager closed")
)
