package functions

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wispbus/wisp/bus"
)

// Manifest describes a function: what it reads, where it may write, and its
// sandbox. It is what `wisp fn deploy` sends along with the module.
type Manifest struct {
	// Name identifies the function (1-100 of [a-zA-Z0-9._-]). Its input
	// offsets are committed under the consumer group "wisp.fn.<name>".
	Name string `json:"name"`
	// Input is the topic the function reads, every partition of it.
	Input string `json:"input"`
	// Outputs are the topics the function may write to; the first is the
	// default output. At least one; none may be the input.
	Outputs []string `json:"outputs"`
	// DLQ is the dead-letter topic for records the function fails on. Empty:
	// a failing record stops the function (state failed) instead.
	DLQ string `json:"dlq,omitempty"`
	// Env is the module's environment. Names starting with WISP_ are
	// reserved for the variables the host sets.
	Env map[string]string `json:"env,omitempty"`
	// Limits bound the sandbox and the failure policy.
	Limits Limits `json:"limits"`
	// Start is where a new function starts reading each partition: "start"
	// (the earliest offset), "end" (only new records; the default), an
	// offset "N", or "@T" with T a time (RFC 3339, or Unix milliseconds):
	// the first record at or after it. On a redeploy an empty Start
	// continues from the committed offsets and a non-empty one moves them
	// (the CLI's --from).
	Start string `json:"start,omitempty"`
}

// Limits bound a function's sandbox and failure policy. Zero values take
// the defaults.
type Limits struct {
	// MemoryMB caps each instance's memory. Default 64.
	MemoryMB int `json:"memory_mb,omitempty"`
	// Timeout is the deadline of one batch. Default 5s.
	Timeout time.Duration `json:"-"`
	// Instances bounds the function's concurrent instances (each input
	// partition's worker needs one while it runs a batch). Default 4.
	Instances int `json:"instances,omitempty"`
	// Retries is how often a failing batch is retried before it is bisected
	// to find the failing records. Default 2.
	Retries int `json:"retries,omitempty"`
	// MaxFailures is how many consecutive failing batches of a partition
	// put the function in state failed (with a DLQ, bisection resolves
	// failures, so this counts failures to write outputs). Default 5.
	MaxFailures int `json:"max_failures,omitempty"`
}

// Defaults of Limits.
const (
	DefaultMemoryMB    = 64
	DefaultTimeout     = 5 * time.Second
	DefaultInstances   = 4
	DefaultRetries     = 2
	DefaultMaxFailures = 5
)

type limitsJSON struct {
	MemoryMB    int    `json:"memory_mb,omitempty"`
	Timeout     string `json:"timeout,omitempty"`
	Instances   int    `json:"instances,omitempty"`
	Retries     int    `json:"retries,omitempty"`
	MaxFailures int    `json:"max_failures,omitempty"`
}

// MarshalJSON writes Timeout as a duration string ("5s").
func (l Limits) MarshalJSON() ([]byte, error) {
	j := limitsJSON{MemoryMB: l.MemoryMB, Instances: l.Instances, Retries: l.Retries, MaxFailures: l.MaxFailures}
	if l.Timeout != 0 {
		j.Timeout = l.Timeout.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads Timeout as a duration string or milliseconds.
func (l *Limits) UnmarshalJSON(b []byte) error {
	var j struct {
		limitsJSON
		Timeout json.RawMessage `json:"timeout"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*l = Limits{MemoryMB: j.MemoryMB, Instances: j.Instances, Retries: j.Retries, MaxFailures: j.MaxFailures}
	if len(j.Timeout) == 0 || string(j.Timeout) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(j.Timeout, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("limits.timeout: %w", err)
		}
		l.Timeout = d
		return nil
	}
	var ms int64
	if err := json.Unmarshal(j.Timeout, &ms); err != nil {
		return fmt.Errorf("limits.timeout: want a duration string or milliseconds")
	}
	l.Timeout = time.Duration(ms) * time.Millisecond
	return nil
}

func (l Limits) withDefaults() Limits {
	if l.MemoryMB == 0 {
		l.MemoryMB = DefaultMemoryMB
	}
	if l.Timeout == 0 {
		l.Timeout = DefaultTimeout
	}
	if l.Instances == 0 {
		l.Instances = DefaultInstances
	}
	if l.Retries == 0 {
		l.Retries = DefaultRetries
	}
	if l.MaxFailures == 0 {
		l.MaxFailures = DefaultMaxFailures
	}
	return l
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,100}$`)

// normalized validates m and returns it with its defaults filled in.
func (m Manifest) normalized() (Manifest, error) {
	bad := func(format string, args ...any) (Manifest, error) {
		return m, fmt.Errorf("%w: %s", ErrInvalidManifest, fmt.Sprintf(format, args...))
	}
	if !nameRE.MatchString(m.Name) {
		return bad("name %q (use 1-100 of [a-zA-Z0-9._-])", m.Name)
	}
	if m.Input == "" {
		return bad("no input topic")
	}
	if err := bus.ValidTopicName(m.Input); err != nil {
		return bad("input: %v", err)
	}
	if len(m.Outputs) == 0 {
		return bad("no output topic")
	}
	var outs []string
	for _, o := range m.Outputs {
		if err := bus.ValidTopicName(o); err != nil {
			return bad("output: %v", err)
		}
		if o == m.Input {
			return bad("output %q is the input topic: the function would read its own output forever", o)
		}
		if !slices.Contains(outs, o) {
			outs = append(outs, o)
		}
	}
	m.Outputs = outs
	if m.DLQ != "" {
		if err := bus.ValidTopicName(m.DLQ); err != nil {
			return bad("dlq: %v", err)
		}
		if m.DLQ == m.Input {
			return bad("the dead-letter topic is the input topic")
		}
	}
	for k := range m.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return bad("environment variable name %q", k)
		}
		if strings.HasPrefix(k, "WISP_") {
			return bad("environment variable %s: the WISP_ prefix is reserved for the host", k)
		}
	}
	l := m.Limits
	switch {
	case l.MemoryMB < 0 || l.MemoryMB > 4096:
		return bad("limits.memory_mb %d (1-4096)", l.MemoryMB)
	case l.Timeout < 0:
		return bad("limits.timeout %s", l.Timeout)
	case l.Instances < 0 || l.Instances > 256:
		return bad("limits.instances %d (1-256)", l.Instances)
	case l.Retries < 0 || l.MaxFailures < 0:
		return bad("negative limits.retries or limits.max_failures")
	}
	m.Limits = l.withDefaults()
	if m.Start != "" {
		if _, err := parseStart(m.Start); err != nil {
			return bad("start: %v", err)
		}
	}
	return m, nil
}

// startPos is a parsed Manifest.Start.
type startPos struct {
	offset int64 // bus.Earliest, bus.Latest, or an offset >= 0 when !byTime
	byTime bool
	ms     int64
}

func parseStart(s string) (startPos, error) {
	switch strings.ToLower(s) {
	case "", "end", "latest", "newest":
		return startPos{offset: bus.Latest}, nil
	case "start", "beginning", "earliest", "oldest":
		return startPos{offset: bus.Earliest}, nil
	}
	if t, ok := strings.CutPrefix(s, "@"); ok {
		if ms, err := strconv.ParseInt(t, 10, 64); err == nil {
			return startPos{byTime: true, ms: ms}, nil
		}
		tm, err := time.Parse(time.RFC3339, t)
		if err != nil {
			return startPos{}, fmt.Errorf("%q: want @RFC3339 or @unix-milliseconds", s)
		}
		return startPos{byTime: true, ms: tm.UnixMilli()}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return startPos{}, fmt.Errorf("%q: want start, end, an offset, or @time", s)
	}
	return startPos{offset: n}, nil
}

// resolve turns the position into an offset of one partition.
func (s startPos) resolve(b *bus.Broker, topic string, partition int32) (int64, error) {
	if s.byTime {
		off, _, err := b.ListOffset(topic, partition, s.ms)
		if err != nil {
			return 0, err
		}
		if off < 0 { // nothing at or after that time yet
			off, _, err = b.ListOffset(topic, partition, bus.Latest)
		}
		return off, err
	}
	if s.offset >= 0 {
		lo, _, err := b.ListOffset(topic, partition, bus.Earliest)
		if err != nil {
			return 0, err
		}
		hi, _, err := b.ListOffset(topic, partition, bus.Latest)
		if err != nil {
			return 0, err
		}
		return min(max(s.offset, lo), hi), nil
	}
	off, _, err := b.ListOffset(topic, partition, s.offset)
	return off, err
}
