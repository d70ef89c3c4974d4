package e2e_test

import (
	"strings"
	"testing"

	"github.com/wispbus/wisp/internal/testnode"
)

// TestCLIErrors: failures are one line on stderr, "wisp: ...", with exit
// code 1, and command-line mistakes exit 2.
func TestCLIErrors(t *testing.T) {
	n := testnode.Start(t, "--auto-create-topics=false")
	mustWisp(t, n, "", "topic", "create", "exists", "-p", "2")

	for _, c := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string // the whole of stderr
	}{
		{"consume missing topic", "", []string{"consume", "missing"}, 1, `wisp: topic "missing" does not exist`},
		{"consume missing topic in a group", "", []string{"consume", "missing", "-g", "g"}, 1, `wisp: topic "missing" does not exist`},
		{"produce to missing topic", "x\ny\n", []string{"produce", "missing"}, 1, `wisp: topic "missing" does not exist`},
		{"describe missing topic", "", []string{"topic", "describe", "missing"}, 1, `wisp: topic "missing" does not exist`},
		{"delete missing topic", "", []string{"topic", "delete", "missing"}, 1, `wisp: topic "missing" does not exist`},
		{"create existing topic", "", []string{"topic", "create", "exists"}, 1, `wisp: topic "exists" already exists`},
		{"missing partition", "", []string{"consume", "exists", "-p", "5"}, 1, `wisp: topic "exists" has no partition 5 (it has 2)`},
		{"produce to missing partition", "x\n", []string{"produce", "exists", "-p", "9"}, 1, `wisp: topic "exists" has no partition 9 (it has 2)`},
		{"missing group", "", []string{"group", "describe", "nobody"}, 1, `wisp: group "nobody" does not exist`},
		{"bad flag", "", []string{"consume", "exists", "--no-such-flag"}, 2, `wisp: unknown flag: --no-such-flag (see 'wisp consume --help')`},
		{"bad flag value", "", []string{"topic", "create", "x", "-p", "many"}, 2, ""},
		{"missing argument", "", []string{"produce"}, 2, `wisp: missing TOPIC (see 'wisp produce --help')`},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := wisp(t, n, c.stdin, c.args...)
			if res.code != c.code {
				t.Fatalf("exit code %d, want %d\n%s", res.code, c.code, res)
			}
			line := strings.TrimSuffix(res.stderr, "\n")
			if strings.Contains(line, "\n") || !strings.HasPrefix(line, "wisp: ") {
				t.Fatalf("stderr is not one line \"wisp: ...\": %q", res.stderr)
			}
			if c.want != "" && line != c.want {
				t.Fatalf("stderr %q, want %q", line, c.want)
			}
			if res.stdout != "" {
				t.Fatalf("stdout %q", res.stdout)
			}
		})
	}

	// Nothing was created on the way.
	if out := mustWisp(t, n, "", "topic", "list").stdout; strings.Contains(out, "missing") {
		t.Fatalf("a missing topic was created:\n%s", out)
	}
}
