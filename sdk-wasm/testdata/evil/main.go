// Command evil misbehaves on records with chosen values and forwards the
// others, for the host's sandbox tests.
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
	"unsafe"

	wisp "github.com/wispbus/wisp/sdk-wasm"
)

var (
	spin uint64
	hog  [][]byte
	// bad is far outside any linear memory the tests allow.
	bad uintptr = 0xfffffff0
)

func init() {
	wisp.Process(func(r wisp.Record, out wisp.Writer) error {
		switch string(r.Value) {
		case "loop":
			for {
				spin++
			}
		case "bomb":
			for {
				hog = append(hog, make([]byte, 1<<20))
				hog[len(hog)-1][0] = 1
			}
		case "trap":
			*(*uint64)(unsafe.Pointer(bad)) = 1 // out of bounds: a wasm trap
		case "huge":
			return out.Write(wisp.Record{Key: r.Key, Value: make([]byte, 3<<20)})
		case "panic":
			var m map[string]int
			m["x"] = 1
		case "error":
			return errors.New("record refused")
		case "exit":
			os.Exit(3)
		case "env": // the value of the variable named by the key
			v, ok := os.LookupEnv(string(r.Key))
			return out.Write(wisp.Record{Key: r.Key, Value: []byte(fmt.Sprintf("%s %v", v, ok))})
		case "log":
			fmt.Println("hello from", os.Args[0])
			fmt.Fprintln(os.Stderr, "to stderr")
			return nil
		case "fs":
			_, err := os.ReadFile("/etc/hostname")
			return out.Write(wisp.Record{Value: []byte(fmt.Sprint(err))})
		case "time":
			return out.Write(wisp.Record{Value: []byte(strconv.FormatInt(time.Now().UnixMilli(), 10))})
		}
		return out.Write(r)
	})
}

func main() {}
