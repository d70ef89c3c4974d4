// Package jsonfield finds fields in JSON documents without decoding them:
// no reflection and no allocation, which matters inside a WebAssembly
// function that sees every record of a topic. It does not validate the
// parts of the document it skips; use encoding/json when you need that.
//
//	typ, ok := jsonfield.String(rec.Value, "type")
//	start, end, ok := jsonfield.Span(rec.Value, "user", "email")
package jsonfield

import (
	"strconv"
	"unicode/utf8"
)

// Span returns the byte range [start, end) of the value at path (object
// keys, outermost first) in doc.
func Span(doc []byte, path ...string) (start, end int, ok bool) {
	i := skipSpace(doc, 0)
	for _, key := range path {
		if i >= len(doc) || doc[i] != '{' {
			return 0, 0, false
		}
		i = skipSpace(doc, i+1)
		found := false
		for i < len(doc) && doc[i] != '}' {
			ks, ke, ok := stringSpan(doc, i)
			if !ok {
				return 0, 0, false
			}
			i = skipSpace(doc, ke+1)
			if i >= len(doc) || doc[i] != ':' {
				return 0, 0, false
			}
			i = skipSpace(doc, i+1)
			if keyEquals(doc[ks:ke], key) {
				found = true
				break
			}
			if i, ok = skipValue(doc, i); !ok {
				return 0, 0, false
			}
			i = skipSpace(doc, i)
			if i < len(doc) && doc[i] == ',' {
				i = skipSpace(doc, i+1)
			}
		}
		if !found {
			return 0, 0, false
		}
	}
	end, ok = skipValue(doc, i)
	return i, end, ok
}

// Get returns the raw JSON text of the value at path.
func Get(doc []byte, path ...string) ([]byte, bool) {
	s, e, ok := Span(doc, path...)
	if !ok {
		return nil, false
	}
	return doc[s:e], true
}

// String returns the value at path if it is a JSON string, unescaped.
func String(doc []byte, path ...string) (string, bool) {
	v, ok := Get(doc, path...)
	if !ok || len(v) < 2 || v[0] != '"' {
		return "", false
	}
	return Unquote(v)
}

// Equal reports whether the value at path is the string want, or, for a
// number, boolean or null, whether its JSON text is want. It allocates
// nothing unless the string holds escapes.
func Equal(doc []byte, want string, path ...string) bool {
	v, ok := Get(doc, path...)
	if !ok {
		return false
	}
	if len(v) >= 2 && v[0] == '"' {
		return keyEquals(v[1:len(v)-1], want)
	}
	return string(v) == want
}

// Unquote decodes a JSON string literal, quotes included.
func Unquote(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), true
	}
	s, err := strconv.Unquote(string(v))
	if err != nil {
		return unescape(inner)
	}
	return s, true
}

// unescape handles the escapes strconv does not (\/).
func unescape(in []byte) (string, bool) {
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(in) {
			return "", false
		}
		switch in[i] {
		case '"', '\\', '/':
			out = append(out, in[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if i+4 >= len(in) {
				return "", false
			}
			n, err := strconv.ParseUint(string(in[i+1:i+5]), 16, 32)
			if err != nil {
				return "", false
			}
			out = utf8.AppendRune(out, rune(n))
			i += 4
		default:
			return "", false
		}
	}
	return string(out), true
}

// Quote appends s as a JSON string literal to dst.
func Quote(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

func keyEquals(raw []byte, key string) bool {
	if len(raw) == len(key) && string(raw) == key {
		return true
	}
	for _, c := range raw {
		if c == '\\' {
			s, ok := unescape(raw)
			return ok && s == key
		}
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringSpan returns the content range of the string literal at b[i].
func stringSpan(b []byte, i int) (start, end int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return i + 1, j, true
		}
	}
	return 0, 0, false
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		_, e, ok := stringSpan(b, i)
		return e + 1, ok
	case '{', '[':
		var stackBuf [64]byte
		stack := stackBuf[:0]
		for j := i; j < len(b); j++ {
			switch c := b[j]; c {
			case '"':
				_, e, ok := stringSpan(b, j)
				if !ok {
					return 0, false
				}
				j = e
			case '{', '[':
				stack = append(stack, c+2) // '{'+2 == '}', '['+2 == ']'
			case '}', ']':
				if len(stack) == 0 || stack[len(stack)-1] != c {
					return 0, false
				}
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	default:
		j := i
		for j < len(b) {
			c := b[j]
			if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				break
			}
			j++
		}
		return j, j > i
	}
}
