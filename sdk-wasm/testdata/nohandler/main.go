// Command nohandler links the SDK but never registers a handler.
package main

import _ "github.com/wispbus/wisp/sdk-wasm"

func main() {}
