// Command split is a wisp function in the word-count style: each input
// record's value is split into words, and one record per word is written,
// keyed by the lower-cased word with the value "1", so that all the counts
// of one word land in the same output partition.
//
// Environment:
//
//	MIN_LENGTH  shorter words are skipped; default 1
package main

import (
	"bytes"
	"strconv"
	"unicode"

	wisp "github.com/wispbus/wisp/sdk-wasm"
)

func init() {
	minLen, err := strconv.Atoi(wisp.Env("MIN_LENGTH"))
	if err != nil || minLen < 1 {
		minLen = 1
	}
	one := []byte("1")
	wisp.Process(func(r wisp.Record, out wisp.Writer) error {
		words := bytes.FieldsFunc(r.Value, func(c rune) bool {
			return !unicode.IsLetter(c) && !unicode.IsDigit(c) && c != '\''
		})
		for _, w := range words {
			if len([]rune(string(w))) < minLen {
				continue
			}
			if err := out.Write(wisp.Record{Key: bytes.ToLower(w), Value: one}); err != nil {
				return err
			}
		}
		return nil
	})
}

func main() {}
