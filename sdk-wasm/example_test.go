package wisp_test

import (
	"bytes"
	"fmt"

	wisp "github.com/wispbus/wisp/sdk-wasm"
)

// Handlers are plain Go functions, so they can be tested natively with Run
// before being built into a module.
func ExampleRun() {
	words := func(r wisp.Record, out wisp.Writer) error {
		for _, w := range bytes.Fields(r.Value) {
			if err := out.Write(wisp.Record{Key: w, Value: []byte("1")}, wisp.ToTopic("words")); err != nil {
				return err
			}
		}
		return nil
	}
	out, err := wisp.Run(words, wisp.Record{Value: []byte("to be or not"), Timestamp: 1700000000000})
	if err != nil {
		panic(err)
	}
	for _, w := range out {
		fmt.Println(w.Topic, string(w.Record.Key), w.Record.Timestamp)
	}
	// Output:
	// words to 1700000000000
	// words be 1700000000000
	// words or 1700000000000
	// words not 1700000000000
}
