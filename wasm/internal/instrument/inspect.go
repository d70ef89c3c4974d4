package instrument

import "fmt"

// Export kinds.
const (
	KindFunc   = kindFunc
	KindMemory = kindMemory
	KindGlobal = kindGlobal
)

// Shape is what Inspect finds in a module's import and export sections.
type Shape struct {
	Exports map[string]byte // export name to kind (KindFunc, KindMemory, ...)
	Imports []string        // "module.name" of every import
}

// Inspect reads a module's imports and exports without compiling it, so
// that a module without the expected shape is rejected at once rather than
// after a compilation of a second or more.
func Inspect(bin []byte) (Shape, error) {
	sh := Shape{Exports: map[string]byte{}}
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return sh, fmt.Errorf("%w: not a WebAssembly binary", ErrUnsupported)
	}
	r := &reader{b: bin, off: 8}
	for r.off < len(bin) && r.err == nil {
		id := r.byte()
		body := r.bytes(int(r.u32()))
		if r.err != nil {
			break
		}
		s := &reader{b: body}
		switch id {
		case secImport:
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				mod, name := s.name(), s.name()
				sh.Imports = append(sh.Imports, mod+"."+name)
				switch kind := s.byte(); kind {
				case kindFunc:
					s.u32()
				case kindTable:
					s.byte()
					s.limits()
				case kindMemory:
					s.limits()
				case kindGlobal:
					s.byte()
					s.byte()
				case kindTag:
					s.byte()
					s.u32()
				default:
					s.fail("import kind %d", kind)
				}
			}
		case secExport:
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				name := s.name()
				sh.Exports[name] = s.byte()
				s.u32()
			}
		}
		if s.err != nil {
			return sh, s.err
		}
	}
	return sh, r.err
}
