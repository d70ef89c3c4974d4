package testnode

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PID is the process id of the running node.
func (n *Node) PID() int { return n.cmd.Process.Pid }

// RSS is the node's resident set size in bytes, from /proc/<pid>/status
// (VmRSS); Linux only.
func (n *Node) RSS() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", n.PID()))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("testnode: VmRSS %q: %w", v, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("testnode: no VmRSS in /proc/%d/status", n.PID())
}
