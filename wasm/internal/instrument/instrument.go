// Package instrument rewrites a WebAssembly module so that the host can
// stop it cheaply: before every branch back to a loop header it inserts
//
//	global.get $fuel  i32.const 1  i32.sub  global.set $fuel
//	global.get $fuel  i32.eqz
//	if
//	  i32.const 4096  global.set $fuel
//	  i32.const 0  memory.grow  drop      ;; an exit to Go: a safe point
//	  global.get $wisp_interrupt
//	  if  unreachable  end
//	end
//
// where $wisp_interrupt is a new mutable i32 global, exported under
// [InterruptGlobal], and $fuel a private counter. The host sets the
// interrupt from another goroutine when a call's deadline passes; the
// module traps within 4096 loop iterations.
//
// The periodic memory.grow(0) matters as much as the interrupt: compiled
// code is invisible to Go's scheduler, so a module spinning in a loop that
// never leaves it would block every stop-the-world of the garbage
// collector — and with it the whole process, including the timer meant to
// interrupt the module. wazero leaves compiled code for Go on memory.grow,
// and there the runtime can preempt the goroutine.
//
// Why not wazero's WithCloseOnContextDone: it inserts, at every loop
// header, a call out of the compiled code into Go to check the module's
// state. Go-compiled modules enter a loop header on every function call
// (the Go wasm backend wraps each function body in a resume loop), so that
// check ran dozens of times per record and made a Go function four to five
// times slower (see BenchmarkDeadline). A back-edge check is one load and
// one branch, and runs only when a loop really iterates. Every
// non-terminating execution of a module without host calls that block
// either iterates a loop or recurses without bound, which ends in a stack
// overflow trap; so the check is enough. Tail calls, which could recurse
// without growing the stack, are not enabled in the runtime.
//
// The start section, if any, is removed and its function exported as
// [StartExport], so that the host runs it under the same deadline instead
// of inside instantiation, where it could not be interrupted.
package instrument

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Names the rewritten module exports.
const (
	InterruptGlobal = "wisp_interrupt"
	StartExport     = "wisp_start"
)

// ErrUnsupported is returned for modules using features the rewriter does
// not know (and the runtime does not enable either).
var ErrUnsupported = errors.New("instrument: unsupported module")

// Section ids.
const (
	secCustom   = 0
	secImport   = 2
	secMemory   = 5
	secGlobal   = 6
	secExport   = 7
	secStart    = 8
	secCode     = 10
	secDataCnt  = 12
	secTag      = 13
	kindFunc    = 0
	kindTable   = 1
	kindMemory  = 2
	kindGlobal  = 3
	kindTag     = 4
	typeI32     = 0x7f
	opBlock     = 0x02
	opLoop      = 0x03
	opIf        = 0x04
	opEnd       = 0x0b
	opBr        = 0x0c
	opBrIf      = 0x0d
	opBrTable   = 0x0e
	opGlobalGet = 0x23
	opGlobalSet = 0x24

	// fuel is how many back-edges run between two exits to Go.
	fuel = 4096
)

type section struct {
	id   byte
	body []byte
}

// order is where a section id sits in the required section order.
func order(id byte) int {
	switch id {
	case secDataCnt:
		return 95 // after element (9), before code (10)
	case secTag:
		return 55 // after memory (5), before global (6)
	}
	return int(id) * 10
}

// Rewrite returns the instrumented module. It fails on a malformed module
// (the runtime would reject it anyway) or one using instructions outside
// WebAssembly 2.0 (tail calls, exceptions, ...).
func Rewrite(bin []byte) ([]byte, error) {
	if len(bin) < 8 || !bytes.Equal(bin[:8], []byte{0, 'a', 's', 'm', 1, 0, 0, 0}) {
		return nil, fmt.Errorf("%w: not a WebAssembly 1.0 binary", ErrUnsupported)
	}
	var secs []section
	r := &reader{b: bin, off: 8}
	for r.off < len(bin) {
		id := r.byte()
		n := r.u32()
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, r.err
		}
		if id == secCustom {
			name := (&reader{b: body}).name()
			if strings.HasPrefix(name, ".debug") {
				continue // DWARF refers to code offsets that the rewrite moves
			}
		}
		secs = append(secs, section{id, body})
	}

	importedGlobals, definedGlobals := 0, 0
	hasMemory := false
	var globals, exports []byte
	start := -1
	for _, s := range secs {
		switch s.id {
		case secImport:
			n, mems, err := countImports(s.body)
			if err != nil {
				return nil, err
			}
			importedGlobals = n
			hasMemory = hasMemory || mems > 0
		case secMemory:
			hasMemory = true
		case secGlobal:
			sr := &reader{b: s.body}
			definedGlobals = int(sr.u32())
			globals = s.body[sr.off:]
			if sr.err != nil {
				return nil, sr.err
			}
		case secExport:
			exports = s.body
		case secStart:
			sr := &reader{b: s.body}
			start = int(sr.u32())
			if sr.err != nil {
				return nil, sr.err
			}
		}
	}
	g := uint32(importedGlobals + definedGlobals)

	// The globals: interrupt (mutable i32 = 0) and fuel (= fuel).
	newGlobals := appendU32(nil, uint32(definedGlobals+2))
	newGlobals = append(newGlobals, globals...)
	newGlobals = append(newGlobals, typeI32, 1, 0x41, 0x00, opEnd)
	newGlobals = append(newGlobals, typeI32, 1, 0x41)
	newGlobals = appendS32(newGlobals, fuel)
	newGlobals = append(newGlobals, opEnd)

	// The exports.
	var expList [][]byte
	names := map[string]bool{}
	if exports != nil {
		er := &reader{b: exports}
		n := er.u32()
		for i := uint32(0); i < n && er.err == nil; i++ {
			s := er.off
			names[er.name()] = true
			er.byte()
			er.u32()
			expList = append(expList, exports[s:er.off])
		}
		if er.err != nil {
			return nil, er.err
		}
	}
	for _, n := range []string{InterruptGlobal, StartExport} {
		if names[n] {
			return nil, fmt.Errorf("%w: it already exports %q", ErrUnsupported, n)
		}
	}
	expList = append(expList, appendExport(nil, InterruptGlobal, kindGlobal, g))
	if start >= 0 {
		expList = append(expList, appendExport(nil, StartExport, kindFunc, uint32(start)))
	}
	newExports := appendU32(nil, uint32(len(expList)))
	for _, e := range expList {
		newExports = append(newExports, e...)
	}

	// Rebuild: replace or insert global and export sections, drop start,
	// rewrite code.
	var out []section
	placed := map[byte]bool{}
	place := func(id byte, body []byte) {
		out = append(out, section{id, body})
		placed[id] = true
	}
	for _, s := range secs {
		if s.id != secCustom {
			// Sections we add go before the first section ordered after them.
			if !placed[secGlobal] && order(s.id) > order(secGlobal) {
				place(secGlobal, newGlobals)
			}
			if !placed[secExport] && order(s.id) > order(secExport) {
				place(secExport, newExports)
			}
		}
		switch s.id {
		case secGlobal:
			place(secGlobal, newGlobals)
		case secExport:
			place(secExport, newExports)
		case secStart:
		case secCode:
			code, err := rewriteCode(s.body, backEdgeCheck(g, g+1, hasMemory))
			if err != nil {
				return nil, err
			}
			out = append(out, section{secCode, code})
		default:
			out = append(out, s)
		}
	}
	if !placed[secGlobal] {
		place(secGlobal, newGlobals)
	}
	if !placed[secExport] {
		place(secExport, newExports)
	}

	res := make([]byte, 0, len(bin)+len(bin)/8)
	res = append(res, bin[:8]...)
	for _, s := range out {
		res = append(res, s.id)
		res = appendU32(res, uint32(len(s.body)))
		res = append(res, s.body...)
	}
	return res, nil
}

func appendExport(b []byte, name string, kind byte, idx uint32) []byte {
	b = appendU32(b, uint32(len(name)))
	b = append(b, name...)
	b = append(b, kind)
	return appendU32(b, idx)
}

// backEdgeCheck is the code inserted before a branch to a loop.
func backEdgeCheck(interrupt, fuelGlobal uint32, memory bool) []byte {
	b := append(appendU32([]byte{opGlobalGet}, fuelGlobal), 0x41, 0x01, 0x6b) // fuel - 1
	b = append(appendU32(append(b, opGlobalSet), fuelGlobal), opGlobalGet)
	b = append(appendU32(b, fuelGlobal), 0x45, opIf, 0x40) // == 0 ?
	b = appendS32(append(b, 0x41), fuel)
	b = appendU32(append(b, opGlobalSet), fuelGlobal)
	if memory {
		b = append(b, 0x41, 0x00, 0x40, 0x00, 0x1a) // memory.grow(0); drop
	}
	b = appendU32(append(b, opGlobalGet), interrupt)
	return append(b, opIf, 0x40, 0x00, opEnd, opEnd)
}

func countImports(body []byte) (globals, memories int, err error) {
	r := &reader{b: body}
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case kindFunc:
			r.u32()
		case kindTable:
			r.byte() // reftype
			r.limits()
		case kindMemory:
			r.limits()
			memories++
		case kindGlobal:
			r.byte()
			r.byte()
			globals++
		case kindTag:
			r.byte()
			r.u32()
		default:
			r.fail("import kind %d", kind)
		}
	}
	return globals, memories, r.err
}

// rewriteCode instruments every function body of a code section.
func rewriteCode(body []byte, check []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(make([]byte, 0, len(body)+len(body)/8), n)
	var fn []byte
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := r.u32()
		b := r.bytes(int(size))
		if r.err != nil {
			break
		}
		var err error
		if fn, err = rewriteBody(fn[:0], b, check); err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		out = appendU32(out, uint32(len(fn)))
		out = append(out, fn...)
	}
	if r.err == nil && r.off != len(body) {
		r.fail("%d trailing bytes in the code section", len(body)-r.off)
	}
	return out, r.err
}

// rewriteBody copies one function body to dst, inserting check before
// every branch that targets a loop.
func rewriteBody(dst, body, check []byte) ([]byte, error) {
	r := &reader{b: body}
	nlocals := r.u32()
	for i := uint32(0); i < nlocals && r.err == nil; i++ {
		r.u32()
		r.byte()
	}
	if r.err != nil {
		return nil, r.err
	}
	dst = append(dst, body[:r.off]...)
	// Control stack: true for a loop. The function body is a block.
	stack := []bool{false}
	var labels []uint32
	for len(stack) > 0 {
		if r.off >= len(body) {
			return nil, fmt.Errorf("%w: function body ends inside a block", ErrUnsupported)
		}
		start := r.off
		op := r.byte()
		switch {
		case op == opBlock || op == opLoop || op == opIf:
			r.blockType()
			stack = append(stack, op == opLoop)
		case op == opEnd:
			stack = stack[:len(stack)-1]
		case op == opBr || op == opBrIf:
			l := r.u32()
			if r.err == nil && targetsLoop(stack, l) {
				dst = append(dst, check...)
			}
		case op == opBrTable:
			labels = labels[:0]
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				labels = append(labels, r.u32())
			}
			labels = append(labels, r.u32())
			for _, l := range labels {
				if r.err == nil && targetsLoop(stack, l) {
					dst = append(dst, check...)
					break
				}
			}
		default:
			r.immediates(op)
		}
		if r.err != nil {
			return nil, r.err
		}
		dst = append(dst, body[start:r.off]...)
	}
	if r.off != len(body) {
		return nil, fmt.Errorf("%w: %d bytes after the function's end", ErrUnsupported, len(body)-r.off)
	}
	return dst, nil
}

func targetsLoop(stack []bool, l uint32) bool {
	return int(l) < len(stack) && stack[len(stack)-1-int(l)]
}

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: at byte %d: %s", ErrUnsupported, r.off, fmt.Sprintf(format, args...))
	}
}

func (r *reader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.fail("truncated")
		return 0
	}
	v := r.b[r.off]
	r.off++
	return v
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b)-r.off {
		r.fail("truncated")
		return nil
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}

// leb reads an unsigned or signed LEB128 of at most maxBits.
func (r *reader) leb(maxBits int) uint64 {
	var v uint64
	for shift := 0; ; shift += 7 {
		if shift >= maxBits+7 {
			r.fail("LEB128 too long")
			return 0
		}
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
}

func (r *reader) u32() uint32 { return uint32(r.leb(32)) }

func (r *reader) name() string {
	n := r.u32()
	return string(r.bytes(int(n)))
}

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

func (r *reader) blockType() {
	if r.off >= len(r.b) {
		r.fail("truncated")
		return
	}
	switch r.b[r.off] {
	case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		r.off++
	default:
		r.leb(33) // a type index, as s33
	}
}

func (r *reader) memarg() {
	r.u32()
	r.u32()
}

// immediates skips the immediates of op (anything but the control
// instructions handled by rewriteBody).
func (r *reader) immediates(op byte) {
	switch {
	case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x0f || op == 0x1a || op == 0x1b:
		// unreachable, nop, else, return, drop, select
	case op == 0x10: // call
		r.u32()
	case op == 0x11: // call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.byte()
		}
	case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.memarg()
	case op == 0x3f || op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == 0x41: // i32.const
		r.leb(32)
	case op == 0x42: // i64.const
		r.leb(64)
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op >= 0x45 && op <= 0xc4: // numeric and sign-extension
	case op == 0xd0: // ref.null
		r.byte()
	case op == 0xd1: // ref.is_null
	case op == 0xd2: // ref.func
		r.u32()
	case op == 0xfc:
		r.miscImmediates(r.u32())
	case op == 0xfd:
		r.simdImmediates(r.u32())
	default:
		r.fail("opcode %#x", op)
	}
}

func (r *reader) miscImmediates(sub uint32) {
	switch {
	case sub <= 7: // saturating truncation
	case sub == 8: // memory.init
		r.u32()
		r.u32()
	case sub == 9, sub == 13, sub >= 15 && sub <= 17: // data.drop, elem.drop, table.grow/size/fill
		r.u32()
	case sub == 10, sub == 12, sub == 14: // memory.copy, table.init, table.copy
		r.u32()
		r.u32()
	case sub == 11: // memory.fill
		r.u32()
	default:
		r.fail("opcode 0xfc %d", sub)
	}
}

func (r *reader) simdImmediates(sub uint32) {
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads, store, load_zero
		r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // extract/replace lane
		r.byte()
	case sub >= 84 && sub <= 91: // load/store lane
		r.memarg()
		r.byte()
	case sub <= 255: // no immediates
	default:
		r.fail("opcode 0xfd %d", sub)
	}
}

func appendU32(b []byte, v uint32) []byte {
	return binary.AppendUvarint(b, uint64(v))
}

// appendS32 appends v as a signed LEB128 (not Go's zigzag varint).
func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
