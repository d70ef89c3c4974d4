package jsonfield

import "testing"

func TestSpan(t *testing.T) {
	doc := []byte(` {"a": 1, "b\"x": "q", "user": {"email": "a@b.c", "tags": ["x", {"y": "}"}]}, "n": null, "t": true, "esc": "a\nb\u00e9"} `)
	tests := []struct {
		path []string
		want string
		ok   bool
	}{
		{[]string{"a"}, `1`, true},
		{[]string{`b"x`}, `"q"`, true},
		{[]string{"user", "email"}, `"a@b.c"`, true},
		{[]string{"user", "tags"}, `["x", {"y": "}"}]`, true},
		{[]string{"n"}, `null`, true},
		{[]string{"t"}, `true`, true},
		{[]string{"missing"}, ``, false},
		{[]string{"a", "b"}, ``, false},
		{nil, string(doc[1 : len(doc)-1]), true},
	}
	for _, tt := range tests {
		got, ok := Get(doc, tt.path...)
		if ok != tt.ok || string(got) != tt.want {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
	if s, ok := String(doc, "esc"); !ok || s != "a\nbé" {
		t.Errorf("String(esc) = %q, %v", s, ok)
	}
	if !Equal(doc, "a@b.c", "user", "email") || !Equal(doc, "1", "a") || Equal(doc, "2", "a") {
		t.Error("Equal")
	}
	if q := string(Quote(nil, "a\"b\n\x01")); q != `"a\"b\n\u0001"` {
		t.Errorf("Quote = %s", q)
	}
}

func TestMalformed(t *testing.T) {
	for _, doc := range []string{``, `{`, `{"a"`, `{"a":`, `{"a": "x`, `[1,2]`, `{"a" 1}`, `{"a": {"b": [}`} {
		if _, ok := Get([]byte(doc), "a", "b"); ok {
			t.Errorf("Get(%q) found a value", doc)
		}
	}
}

func FuzzSpan(f *testing.F) {
	f.Add([]byte(`{"a": {"b": "c"}}`), "a")
	f.Add([]byte(`{"a\\u0062": [1, "]"]}`), "ab")
	f.Fuzz(func(t *testing.T, doc []byte, key string) {
		s, e, ok := Span(doc, key)
		if ok && (s < 0 || e > len(doc) || s > e) {
			t.Fatalf("span [%d,%d) of %d bytes", s, e, len(doc))
		}
		_, _ = String(doc, key)
	})
}
