// Command noexports is a reactor module without the wisp ABI exports.
package main

//go:wasmexport hello
func hello() int32 { return 1 }

func main() {}
