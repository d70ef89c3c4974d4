package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Names of everything the harness creates start with these prefixes, so a
// later run can find what a crashed run left behind. Interface names are
// limited to 15 bytes: "wcbr-" + 6 hex = 11, "wcv-" + 6 hex + "-9" = 12.
const (
	nsPrefix     = "wchaos-"
	brPrefix     = "wcbr-"
	vethPrefix   = "wcv-"
	ruleComment  = "wchaos-"
	lockDir      = "/run/wisp-chaos"
	cmdTimeout   = 15 * time.Second
	bridgeSubnet = "10.77"
)

// Net is one bridge in the root namespace with a network namespace per
// node, each joined to the bridge by a veth pair: node i (1-based) has the
// address 10.77.X.(10+i), the bridge (and so the test process) 10.77.X.1,
// where X is chosen per run.
type Net struct {
	Suffix string
	Bridge string
	Subnet string // "10.77.X"
	N      int
}

// Preflight reports why the harness cannot run here (not root, no ip or
// iptables or tc), or nil.
func Preflight() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("chaos: needs root (network namespaces, iptables, tc, tmpfs mounts); running as uid %d", os.Geteuid())
	}
	for _, tool := range []string{"ip", "iptables", "tc", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("chaos: %s not found in PATH: %v", tool, err)
		}
	}
	if out, err := run("ip", "netns", "list"); err != nil {
		return fmt.Errorf("chaos: ip netns does not work here: %v %s", err, out)
	}
	return nil
}

// run runs a command with a bound and returns its combined output.
func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func mustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := run(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// NewNet builds the bridge and n namespaces, after removing what earlier
// crashed runs left behind. Everything is removed when the test ends,
// whether it passed or not.
func NewNet(t testing.TB, n int) *Net {
	t.Helper()
	CleanStale(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	x, _ := rand.Int(rand.Reader, big.NewInt(200))
	nt := &Net{Suffix: hex.EncodeToString(b[:]), N: n, Subnet: fmt.Sprintf("%s.%d", bridgeSubnet, 20+x.Int64())}
	nt.Bridge = brPrefix + nt.Suffix
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The lock file says which live process owns these names.
	if err := os.WriteFile(filepath.Join(lockDir, nt.Suffix), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nt.destroy(t) })

	mustRun(t, "ip", "link", "add", nt.Bridge, "type", "bridge")
	mustRun(t, "ip", "addr", "add", nt.Subnet+".1/24", "dev", nt.Bridge)
	mustRun(t, "ip", "link", "set", nt.Bridge, "up")
	// With br_netfilter loaded, bridged frames cross the root namespace's
	// FORWARD chain, whose policy may be DROP (Docker sets it so).
	mustRun(t, "iptables", "-I", "FORWARD", "-i", nt.Bridge, "-o", nt.Bridge, "-m", "comment", "--comment", ruleComment+nt.Suffix, "-j", "ACCEPT")
	for i := 1; i <= n; i++ {
		ns, host, peer := nt.NS(i), nt.veth(i), fmt.Sprintf("wcp-%s-%d", nt.Suffix, i)
		mustRun(t, "ip", "netns", "add", ns)
		mustRun(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer)
		mustRun(t, "ip", "link", "set", peer, "netns", ns)
		mustRun(t, "ip", "link", "set", host, "master", nt.Bridge, "up")
		mustRun(t, "ip", "-n", ns, "link", "set", peer, "name", "eth0")
		mustRun(t, "ip", "-n", ns, "addr", "add", nt.IP(i)+"/24", "dev", "eth0")
		mustRun(t, "ip", "-n", ns, "link", "set", "eth0", "up")
		mustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	return nt
}

// NS is the namespace name of node i.
func (nt *Net) NS(i int) string { return fmt.Sprintf("%s%s-%d", nsPrefix, nt.Suffix, i) }

func (nt *Net) veth(i int) string { return fmt.Sprintf("%s%s-%d", vethPrefix, nt.Suffix, i) }

// IP is the address of node i.
func (nt *Net) IP(i int) string { return fmt.Sprintf("%s.%d", nt.Subnet, 10+i) }

// ClientIP is the address of the test process on the bridge.
func (nt *Net) ClientIP() string { return nt.Subnet + ".1" }

// InNS runs a command inside node i's namespace.
func (nt *Net) InNS(i int, name string, args ...string) (string, error) {
	return run("ip", append([]string{"netns", "exec", nt.NS(i), name}, args...)...)
}

// Drop makes node i drop what it receives from (in) and/or sends to (out)
// the nodes in peers. The test process (ClientIP) still reaches every node.
func (nt *Net) Drop(t testing.TB, i int, peers []int, in, out bool) {
	t.Helper()
	for _, p := range peers {
		if in {
			if _, err := nt.InNS(i, "iptables", "-A", "INPUT", "-s", nt.IP(p), "-j", "DROP"); err != nil {
				t.Fatal(err)
			}
		}
		if out {
			if _, err := nt.InNS(i, "iptables", "-A", "OUTPUT", "-d", nt.IP(p), "-j", "DROP"); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Heal removes every iptables rule and netem qdisc in every namespace.
func (nt *Net) Heal(t testing.TB) {
	t.Helper()
	for i := 1; i <= nt.N; i++ {
		if _, err := nt.InNS(i, "iptables", "-F"); err != nil {
			t.Error(err)
		}
		_, _ = nt.InNS(i, "tc", "qdisc", "del", "dev", "eth0", "root") // absent when none was set
	}
}

// Netem sets a netem qdisc on node i's interface, e.g. "delay 30ms 10ms
// loss 3%". Kernels built without sch_netem refuse it (an error).
func (nt *Net) Netem(i int, spec string) error {
	args := append([]string{"qdisc", "replace", "dev", "eth0", "root", "netem"}, strings.Fields(spec)...)
	_, err := nt.InNS(i, "tc", args...)
	return err
}

// Degrade is what stands in for netem where the kernel lacks it: node i
// drops a random share (0..1) of the packets it receives and sends, and its
// outgoing traffic is shaped by a token bucket to rate (e.g. "8mbit"),
// which queues, that is delays, what exceeds it.
func (nt *Net) Degrade(t testing.TB, i int, loss float64, rate string) {
	t.Helper()
	p := strconv.FormatFloat(loss, 'f', 3, 64)
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		if _, err := nt.InNS(i, "iptables", "-A", chain, "-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nt.InNS(i, "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", rate, "burst", "32kb", "latency", "300ms"); err != nil {
		t.Fatal(err)
	}
}

// destroy kills what still runs in the namespaces and removes them, the
// veths, the bridge and the FORWARD rule.
func (nt *Net) destroy(t testing.TB) {
	removeSuffix(t, nt.Suffix)
}

// removeSuffix removes everything named with suffix; errors are logged, not
// fatal, so that cleanup goes as far as it can.
func removeSuffix(t testing.TB, suffix string) {
	out, _ := run("ip", "netns", "list")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix+suffix+"-") {
			continue
		}
		ns := f[0]
		pids, _ := run("ip", "netns", "pids", ns)
		for _, p := range strings.Fields(pids) {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGCONT)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if _, err := run("ip", "netns", "del", ns); err != nil {
			t.Logf("cleanup: %v", err)
		}
	}
	links, _ := run("ip", "-br", "link")
	for _, line := range strings.Split(links, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		name, _, _ := strings.Cut(f[0], "@")
		if strings.HasPrefix(name, vethPrefix+suffix) || name == brPrefix+suffix || (suffix == "" && strings.HasPrefix(name, brPrefix)) {
			if _, err := run("ip", "link", "del", name); err != nil && !strings.Contains(err.Error(), "Cannot find") {
				t.Logf("cleanup: %v", err)
			}
		}
	}
	rules, _ := run("iptables", "-S", "FORWARD")
	for _, line := range strings.Split(rules, "\n") {
		if !strings.Contains(line, ruleComment+suffix) || !strings.HasPrefix(line, "-A ") {
			continue
		}
		args := strings.Fields(strings.Replace(line, "-A ", "-D ", 1))
		for i, a := range args { // iptables -S quotes nothing here, but be safe
			args[i] = strings.Trim(a, `"`)
		}
		if _, err := run("iptables", args...); err != nil {
			t.Logf("cleanup: %v", err)
		}
	}
	unmountUnder(t, suffix)
	if suffix != "" {
		_ = os.Remove(filepath.Join(lockDir, suffix))
	}
}

// CleanStale removes what earlier runs left behind: every name with the
// harness's prefixes whose lock file names a process that is gone.
func CleanStale(t testing.TB) {
	t.Helper()
	seen := map[string]bool{}
	out, _ := run("ip", "netns", "list")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], nsPrefix) {
			rest := strings.TrimPrefix(f[0], nsPrefix)
			if s, _, ok := strings.Cut(rest, "-"); ok {
				seen[s] = true
			}
		}
	}
	links, _ := run("ip", "-br", "link")
	for _, line := range strings.Split(links, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], brPrefix) {
			name, _, _ := strings.Cut(f[0], "@")
			seen[strings.TrimPrefix(name, brPrefix)] = true
		}
	}
	for s := range seen {
		if ownerAlive(s) {
			continue
		}
		t.Logf("chaos: removing leftovers of an earlier run (%s)", s)
		removeSuffix(t, s)
	}
}

func ownerAlive(suffix string) bool {
	b, err := os.ReadFile(filepath.Join(lockDir, suffix))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// mountRoot holds the tmpfs data directories of the disk-full scenario.
const mountRoot = "/run/wisp-chaos/mnt"

// unmountUnder unmounts the tmpfs mounts of a run (all stale ones when
// suffix is empty is not done: only exact suffix directories).
func unmountUnder(t testing.TB, suffix string) {
	if suffix == "" {
		return
	}
	dir := filepath.Join(mountRoot, suffix)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if _, err := run("umount", "-l", p); err != nil && !strings.Contains(err.Error(), "not mounted") {
			t.Logf("cleanup: %v", err)
		}
	}
	_ = os.RemoveAll(dir)
}

// Tmpfs mounts a tmpfs of size bytes for the run and returns its path; it
// is unmounted at cleanup.
func (nt *Net) Tmpfs(t testing.TB, name string, size int64) string {
	t.Helper()
	dir := filepath.Join(mountRoot, nt.Suffix, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "wchaos", dir)
	return dir
}
