// Command wisp is the one binary of wisp: the server (wisp serve) and the
// command-line client (topics, produce, consume, groups, cluster).
package main

import (
	"os"

	"github.com/wispbus/wisp/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
