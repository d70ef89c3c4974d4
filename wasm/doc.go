// Package wasm is wisp's WebAssembly host: it compiles function modules
// with wazero (once per node, cached on disk), keeps a pool of instances per
// function, and runs batches of records through them under a memory limit
// and a deadline, speaking the guest ABI of docs/abi.md.
//
// One Runtime per node; one Module per distinct module binary; one Pool
// per deployed function:
//
//	rt, err := wasm.NewRuntime(ctx, wasm.Config{CacheDir: "data/functions/cache"})
//	mod, err := rt.Compile(ctx, bin)           // rejects modules without the ABI
//	pool, err := mod.NewPool(ctx, wasm.PoolConfig{Env: env, Timeout: 5 * time.Second})
//	var res wasm.Results
//	err = pool.Process(ctx, &wasm.Batch{Topic: "in", Records: recs}, &res)
//	// res.Records[i] is the outcome of recs[i]: outputs, or an error
//
// A Pool is a [Processor]; so is [Native], a Go function run in place of a
// module, which benchmarks use as the baseline.
//
// An instance is never shared between goroutines: Process takes one from
// the pool (creating it if the pool is below its size), runs the batch and
// returns it. An instance whose call failed in any way (trap, exit,
// timeout, memory limit, malformed output) is closed and replaced on demand,
// so a module cannot carry a broken state from one batch to the next.
package wasm
