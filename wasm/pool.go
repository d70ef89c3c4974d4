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
	"time"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/wispbus/wisp/wasm/internal/instrument"
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
	mod       api.Module
	mem       api.Memory
	version   api.Function
	buffer    api.Function
	process   api.Function
	interrupt api.MutableGlobal // nil unless the module is instrumented
	memory    *linearMemory
	stack     [2]uint64

	mu    sync.Mutex // guards armed and fired, and writes to interrupt
	armed bool
	fired error // why the interrupt was raised: ErrTimeout or a context error
}

// arm raises the instance's interrupt when timeout passes or ctx ends,
// until the returned disarm is called. disarm reports why the interrupt
// was raised, if it was, and lowers it again.
//
// The interrupt is raised from a timer goroutine while the instance runs
// on the caller's: arming, firing and disarming take inst.mu, so a timer
// that fires after the call returned (but before disarm) finds the
// instance still armed, raises the flag, and disarm lowers it before the
// instance goes back to the pool. A raised flag thus never leaks into the
// next call.
func (inst *instance) arm(ctx context.Context, timeout time.Duration) (disarm func() error) {
	if inst.interrupt == nil {
		return func() error { return nil }
	}
	inst.mu.Lock()
	inst.armed, inst.fired = true, nil
	inst.mu.Unlock()
	fire := func(why error) {
		inst.mu.Lock()
		if inst.armed && inst.fired == nil {
			inst.fired = why
			inst.interrupt.Set(1)
		}
		inst.mu.Unlock()
	}
	t := time.AfterFunc(timeout, func() { fire(ErrTimeout) })
	stop := context.AfterFunc(ctx, func() { fire(ctx.Err()) })
	return func() error {
		t.Stop()
		stop()
		inst.mu.Lock()
		defer inst.mu.Unlock()
		inst.armed = false
		if inst.fired != nil {
			inst.interrupt.Set(0)
		}
		return inst.fired
	}
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
		WithRandSource(crand.Reader).
		WithStartFunctions() // run by instantiate, under a deadline
	// No WithSysNanosleep: sleeping returns at once, so that a module
	// cannot block a worker in a host call that no deadline interrupts.
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
	disarm := inst.arm(ctx, p.cfg.Timeout)
	err = inst.version.CallWithStack(cctx, inst.stack[:])
	fired := disarm()
	cancel()
	if err != nil {
		p.discard(inst)
		return fmt.Errorf("%w: wisp_abi_version failed: %v", ErrInvalidModule, classify(ctx, inst, err, fired, p.cfg.Timeout))
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
		return nil, classify(ctx, &instance{memory: lm}, err, nil, p.cfg.InitTimeout)
	}
	inst = &instance{mod: mod, mem: mod.Memory(), memory: lm,
		version: mod.ExportedFunction("wisp_abi_version"),
		buffer:  mod.ExportedFunction("wisp_buffer"),
		process: mod.ExportedFunction("wisp_process")}
	if g, ok := mod.ExportedGlobal(instrument.InterruptGlobal).(api.MutableGlobal); ok {
		inst.interrupt = g
	}
	// The module's own initialisation: its start section (moved to an
	// export by the instrumentation) and the WASI reactor's _initialize.
	var inits []api.Function
	if p.m.startFn {
		inits = append(inits, mod.ExportedFunction(instrument.StartExport))
	}
	if p.m.initFn {
		inits = append(inits, mod.ExportedFunction("_initialize"))
	}
	for _, fn := range inits {
		disarm := inst.arm(ctx, p.cfg.InitTimeout)
		err := fn.CallWithStack(ictx, nil)
		fired := disarm()
		if err != nil {
			mod.Close(context.Background())
			return nil, fmt.Errorf("%s: %w", fn.Definition().ExportNames()[0], classify(ctx, inst, err, fired, p.cfg.InitTimeout))
		}
	}
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
	disarm := inst.arm(ctx, p.cfg.Timeout)
	fail := func(err error) error { return classify(ctx, inst, err, disarm(), p.cfg.Timeout) }

	inst.stack[0] = uint64(size)
	if err := inst.buffer.CallWithStack(cctx, inst.stack[:]); err != nil {
		return fail(err)
	}
	ptr := uint32(inst.stack[0])
	if ptr == 0 {
		disarm()
		if inst.memory.refused {
			return fmt.Errorf("%w (%d MiB): no room for a %d-byte batch", ErrMemoryLimit, inst.memory.limit>>20, size)
		}
		return fmt.Errorf("%w: wisp_buffer(%d) returned 0", ErrBatch, size)
	}
	view, ok := inst.mem.Read(ptr, uint32(size))
	if !ok {
		disarm()
		return fmt.Errorf("%w: wisp_buffer returned [%d, +%d) outside memory", ErrMalformed, ptr, size)
	}
	if enc := EncodeInput(view[:0], in); len(enc) != size || (size > 0 && unsafe.SliceData(enc) != unsafe.SliceData(view)) {
		panic("wasm: InputSize and EncodeInput disagree")
	}
	inst.stack[0], inst.stack[1] = uint64(ptr), uint64(size)
	err := inst.process.CallWithStack(cctx, inst.stack[:])
	if err != nil {
		return fail(err)
	}
	disarm() // the call completed: its result stands even if the timer fired since
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
