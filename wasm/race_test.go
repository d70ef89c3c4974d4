//go:build race

package wasm

// raceEnabled: compiling a module is ~15x slower under the race detector.
const raceEnabled = true
