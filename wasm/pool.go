package wasm

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Processor runs a batch of records through a function. *Pool and Native
// implement it; the functions package runs its workers against it, which
// is the seam benchmarks use to compare a module with native Go.
type Processor interface {
	// Process fills out with one Result per record of in. An error means
	// the whole batch failed (see IsModuleFailure); out is then undefined.
	Process(ctx context.Context, in *Batch, out *Results) error
}

// Pool runs batches on a bounded set of instances of one module. It is safe
// for concurrent use; each instance serves one call at a time.
type Pool struct {
	m     *Module
	cfg   PoolConfig
	mc    wazero.ModuleConfig
	idle  chan *instance
	slots chan struct{} // one token per live instance

	mu     sync.Mutex // guards live and closed
	live   map[*instance]struct{}
	closed bool

	created, discarded atomic.Int64
}

type instance struct {
	mod     api.Module
	mem     api.Memory
	version api.Function
	buffer  api.Function
	process api.Function
	memory  *linearMemory
	stack   [2]uint64
}

// PoolStats describe a pool's instances.
type PoolStats struct {
	Live      int   // instances that exist now
	Idle      int   // of which waiting for a batch
	Created   int64 // since the pool was made
	Discarded int64 // closed after a failure
}

// NewPool makes a pool for the module and validates the module by running
// one instance: it must instantiate, report ABI version 1 and process an
// empty batch. That instance stays in the pool, warm. Errors wrap
// ErrInvalidModule.
func (m *Module) NewPool(ctx context.Context, cfg PoolConfig) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	limit := cfg.MemoryLimit &^ (1<<16 - 1)
	if min := uint64(m.minPages) << 16; min > limit {
		return nil, fmt.Errorf("%w: it needs %d MiB of memory at start, over its limit of %d MiB",
			ErrInvalidModule, (min+(1<<20)-1)>>20, limit>>20)
	}
	cfg.MemoryLimit = limit
	mc := wazero.NewModuleConfig().
		WithName("").
		WithArgs(cfg.Name).
		WithStdout(cfg.Stdout).
		WithStderr(cfg.Stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(crand.Reader).
		WithStartFunctions()
	if m.initFn {
		mc = mc.WithStartFunctions("_initialize")
	}
	keys := make([]string, 0, len(cfg.Env))
	for k := range cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		mc = mc.WithEnv(k, cfg.Env[k])
	}
	p := &Pool{m: m, cfg: cfg, mc: mc, idle: make(chan *instance, cfg.MaxInstances),
		slots: make(chan struct{}, cfg.MaxInstances), live: map[*instance]struct{}{}}
	if err := p.check(ctx); err != nil {
		p.Close(ctx)
		return nil, err
	}
	return p, nil
}

func (p *Pool) check(ctx context.Context) error {
	p.slots <- struct{}{}
	inst, err := p.instantiate(ctx)
	if err != nil {
		<-p.slots
		return fmt.Errorf("%w: instantiation failed: %v", ErrInvalidModule, err)
	}
	cctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	if err := inst.version.CallWithStack(cctx, inst.stack[:]); err != nil {
		p.discard(inst)
		return fmt.Errorf("%w: wisp_abi_version failed: %v", ErrInvalidModule, classify(ctx, inst, err, p.cfg.Timeout.String()))
	}
	if v := int32(inst.stack[0]); v != ABIVersion {
		p.discard(inst)
		return fmt.Errorf("%w: it speaks wisp ABI version %d; this host speaks version %d", ErrInvalidModule, v, ABIVersion)
	}
	var res Results
	if err := p.run(ctx, inst, &Batch{}, &res); err != nil {
		p.discard(inst)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: an empty batch failed: %v", ErrInvalidModule, err)
	}
	p.put(inst)
	return nil
}

func (p *Pool) instantiate(ctx context.Context) (inst *instance, err error) {
	lm := &linearMemory{limit: p.cfg.MemoryLimit}
	ictx := experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(
		func(_, _ uint64) experimental.LinearMemory { return lm }))
	ictx, cancel := context.WithTimeout(ictx, p.cfg.InitTimeout)
	defer cancel()
	defer func() {
		// wazero panics if an allocator cannot provide the initial size;
		// NewPool checks that, but a panic must never reach the broker.
		if r := recover(); r != nil {
			inst, err = nil, fmt.Errorf("%w: instantiate: %v", ErrTrap, r)
		}
	}()
	mod, err := p.m.rt.rt.InstantiateModule(ictx, p.m.cm, p.mc)
	if err != nil {
		return nil, classify(ctx, &instance{memory: lm}, err, p.cfg.InitTimeout.String())
	}
	inst = &instance{mod: mod, mem: mod.Memory(), memory: lm,
		version: mod.ExportedFunction("wisp_abi_version"),
		buffer:  mod.ExportedFunction("wisp_buffer"),
		process: mod.ExportedFunction("wisp_process")}
	p.mu.Lock()
	closed := p.closed
	if !closed {
		p.live[inst] = struct{}{}
	}
	p.mu.Unlock()
	if closed {
		mod.Close(context.Background())
		return nil, ErrClosed
	}
	p.created.Add(1)
	return inst, nil
}

// get takes an idle instance, or creates one while the pool is below its
// size, or waits for one to come back.
func (p *Pool) get(ctx context.Context) (*instance, error) {
	select {
	case inst := <-p.idle:
		return inst, nil
	default:
	}
	select {
	case inst := <-p.idle:
		return inst, nil
	case p.slots <- struct{}{}:
		inst, err := p.instantiate(ctx)
		if err != nil {
			<-p.slots
		}
		return inst, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *Pool) put(inst *instance) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		p.drop(inst)
		return
	}
	select {
	case p.idle <- inst:
	default: // cannot happen: at most MaxInstances exist
		p.drop(inst)
	}
}

// discard closes an instance that failed; the next get replaces it.
func (p *Pool) discard(inst *instance) {
	p.discarded.Add(1)
	p.drop(inst)
}

func (p *Pool) drop(inst *instance) {
	p.mu.Lock()
	_, ok := p.live[inst]
	delete(p.live, inst)
	p.mu.Unlock()
	if ok {
		inst.mod.Close(context.Background())
		<-p.slots
	}
}

// Process runs in through one instance and decodes its results into out.
func (p *Pool) Process(ctx context.Context, in *Batch, out *Results) error {
	inst, err := p.get(ctx)
	if err != nil {
		return err
	}
	if err := p.run(ctx, inst, in, out); err != nil {
		if errors.Is(err, ErrBatch) {
			p.put(inst) // the module said no, cleanly: the instance is fine
		} else {
			p.discard(inst)
		}
		return err
	}
	p.put(inst)
	return nil
}

func (p *Pool) run(ctx context.Context, inst *instance, in *Batch, out *Results) error {
	size := InputSize(in)
	if size > math.MaxInt32 {
		return fmt.Errorf("wasm: batch of %d bytes is over 2 GiB", size)
	}
	cctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	fail := func(err error) error { return classify(ctx, inst, err, p.cfg.Timeout.String()) }

	inst.stack[0] = uint64(size)
	if err := inst.buffer.CallWithStack(cctx, inst.stack[:]); err != nil {
		return fail(err)
	}
	ptr := uint32(inst.stack[0])
	if ptr == 0 {
		if inst.memory.refused {
			return fmt.Errorf("%w (%d MiB): no room for a %d-byte batch", ErrMemoryLimit, inst.memory.limit>>20, size)
		}
		return fmt.Errorf("%w: wisp_buffer(%d) returned 0", ErrBatch, size)
	}
	view, ok := inst.mem.Read(ptr, uint32(size))
	if !ok {
		return fmt.Errorf("%w: wisp_buffer returned [%d, +%d) outside memory", ErrMalformed, ptr, size)
	}
	if enc := EncodeInput(view[:0], in); len(enc) != size || (size > 0 && unsafe.SliceData(enc) != unsafe.SliceData(view)) {
		panic("wasm: InputSize and EncodeInput disagree")
	}
	inst.stack[0], inst.stack[1] = uint64(ptr), uint64(size)
	if err := inst.process.CallWithStack(cctx, inst.stack[:]); err != nil {
		return fail(err)
	}
	optr, olen := uint32(inst.stack[0]>>32), uint32(inst.stack[0])
	oview, ok := inst.mem.Read(optr, olen)
	if !ok {
		return fmt.Errorf("%w: output [%d, +%d) outside memory", ErrMalformed, optr, olen)
	}
	out.buf = append(out.buf[:0], oview...)
	return DecodeOutput(out.buf, in, out)
}

// Stats describes the pool's instances.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	live := len(p.live)
	p.mu.Unlock()
	return PoolStats{Live: live, Idle: len(p.idle), Created: p.created.Load(), Discarded: p.discarded.Load()}
}

// Close closes every instance. Calls running at that moment fail.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	insts := make([]*instance, 0, len(p.live))
	for inst := range p.live {
		insts = append(insts, inst)
	}
	p.live = map[*instance]struct{}{}
	p.mu.Unlock()
	for _, inst := range insts {
		inst.mod.Close(ctx)
	}
	return nil
}
