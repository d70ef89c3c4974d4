package instrument

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

func sec(id byte, body ...byte) []byte {
	return append(appendU32([]byte{id}, uint32(len(body))), body...)
}

// spinModule is
//
//	(module (memory 1) (start $init)
//	  (func $spin (export "spin") (param i32) (loop (br_if 0 (local.get 0))))
//	  (func $init))
func spinModule() []byte {
	m := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	m = append(m, sec(1, 2, 0x60, 1, 0x7f, 0, 0x60, 0, 0)...)
	m = append(m, sec(3, 2, 0, 1)...)
	m = append(m, sec(5, 1, 0, 1)...)
	m = append(m, sec(7, 1, 4, 's', 'p', 'i', 'n', 0, 0)...)
	m = append(m, sec(8, 1)...)
	spin := []byte{0, 0x03, 0x40, 0x20, 0, 0x0d, 0, 0x0b, 0x0b}
	initf := []byte{0, 0x0b}
	code := []byte{2, byte(len(spin))}
	code = append(code, spin...)
	code = append(append(code, byte(len(initf))), initf...)
	return append(m, sec(10, code...)...)
}

func TestInterrupt(t *testing.T) {
	ctx := context.Background()
	code, err := Rewrite(spinModule())
	if err != nil {
		t.Fatal(err)
	}
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	mod, err := r.InstantiateWithConfig(ctx, code, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	if mod.ExportedFunction(StartExport) == nil {
		t.Fatal("start function not exported")
	}
	// Without the interrupt the loop ends normally.
	if _, err := mod.ExportedFunction("spin").Call(ctx, 0); err != nil {
		t.Fatal(err)
	}
	g, ok := mod.ExportedGlobal(InterruptGlobal).(api.MutableGlobal)
	if !ok {
		t.Fatal("no mutable interrupt global")
	}
	time.AfterFunc(50*time.Millisecond, func() { g.Set(1) })
	start := time.Now()
	_, err = mod.ExportedFunction("spin").Call(ctx, 1)
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("interrupted after %v", d)
	}
}

func TestRejects(t *testing.T) {
	for name, bin := range map[string][]byte{
		"empty":     nil,
		"truncated": spinModule()[:20],
		"tail call": append(spinModule()[:len(spinModule())-11], sec(10, 2, 4, 0, 0x12, 0, 0x0b, 2, 0, 0x0b)...),
	} {
		if _, err := Rewrite(bin); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAppendS32(t *testing.T) {
	for v, want := range map[int32]string{0: "00", 1: "01", 63: "3f", 64: "c000", -1: "7f", -64: "40", -65: "bf7f", 4096: "8020"} {
		if got := fmt.Sprintf("%x", appendS32(nil, v)); got != want {
			t.Errorf("appendS32(%d) = %s, want %s", v, got, want)
		}
	}
}

// TestGCNotBlocked: a module spinning in a loop must not hold up a
// stop-the-world of the garbage collector (which would stall the whole
// process, including the timer that interrupts the module).
func TestGCNotBlocked(t *testing.T) {
	ctx := context.Background()
	code, err := Rewrite(spinModule())
	if err != nil {
		t.Fatal(err)
	}
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	mod, err := r.InstantiateWithConfig(ctx, code, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	g := mod.ExportedGlobal(InterruptGlobal).(api.MutableGlobal)
	done := make(chan error)
	go func() {
		_, err := mod.ExportedFunction("spin").Call(ctx, 1)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it spin
	start := time.Now()
	runtime.GC()
	if d := time.Since(start); d > time.Second {
		t.Errorf("GC took %v while a module spun", d)
	}
	g.Set(1)
	if err := <-done; err == nil {
		t.Fatal("spin ended without the interrupt")
	}
}
