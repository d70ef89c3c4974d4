package functions

import (
	"bytes"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"
)

// LogLine is one line of a function's log.
type LogLine struct {
	Time time.Time `json:"time"`
	// Stream is "stdout" or "stderr" for what the module wrote, "wisp" for
	// what the host reports about the function (failures, dead letters,
	// state changes).
	Stream string `json:"stream"`
	Text   string `json:"text"`
}

// Log streams.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	StreamWisp   = "wisp"
)

// maxLineBytes truncates longer lines.
const maxLineBytes = 4 << 10

// logRing is a function's log: a bounded ring of lines, rate-limited by a
// token bucket, with live followers. Safe for concurrent use: the module's
// instances write to it from several workers at once.
type logRing struct {
	mu        sync.Mutex
	lines     []LogLine // ring of cap lines; next is the oldest once full
	next      int
	full      bool
	rate      float64 // tokens per second
	burst     float64
	tokens    float64
	last      time.Time
	dropped   int
	followers map[chan LogLine]struct{}
	now       func() time.Time
}

func newLogRing(lines int, rate float64) *logRing {
	return &logRing{lines: make([]LogLine, lines), rate: rate, burst: 2 * rate, tokens: 2 * rate,
		followers: map[chan LogLine]struct{}{}, now: time.Now}
}

// add appends one line, unless the rate limit drops it.
func (l *logRing) add(stream, text string) {
	if len(text) > maxLineBytes {
		text = truncateUTF8(text, maxLineBytes) + " [truncated]"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens < 1 {
		l.dropped++
		return
	}
	if l.dropped > 0 && l.tokens >= 2 {
		l.tokens--
		l.appendLocked(LogLine{Time: now, Stream: StreamWisp, Text: fmt.Sprintf("%d log lines dropped (rate limit %.0f/s)", l.dropped, l.rate)})
		l.dropped = 0
	}
	l.tokens--
	l.appendLocked(LogLine{Time: now, Stream: stream, Text: text})
}

// appendLocked stores a line and hands it to followers; l.mu must be held.
// A follower that does not keep up misses lines rather than slowing the
// function down.
func (l *logRing) appendLocked(line LogLine) {
	l.lines[l.next] = line
	l.next++
	if l.next == len(l.lines) {
		l.next, l.full = 0, true
	}
	for ch := range l.followers {
		select {
		case ch <- line:
		default:
		}
	}
}

// since returns the kept lines at or after t, oldest first.
func (l *logRing) since(t time.Time) []LogLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []LogLine
	emit := func(ls []LogLine) {
		for _, line := range ls {
			if !line.Time.Before(t) {
				out = append(out, line)
			}
		}
	}
	if l.full {
		emit(l.lines[l.next:])
	}
	emit(l.lines[:l.next])
	return out
}

func (l *logRing) follow() (<-chan LogLine, func()) {
	ch := make(chan LogLine, 256)
	l.mu.Lock()
	l.followers[ch] = struct{}{}
	l.mu.Unlock()
	return ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if _, ok := l.followers[ch]; ok { // not already closed by closeFollowers
			delete(l.followers, ch)
			close(ch)
		}
	}
}

// closeFollowers ends every follow channel (the function is deleted).
func (l *logRing) closeFollowers() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ch := range l.followers {
		close(ch)
	}
	l.followers = map[chan LogLine]struct{}{}
}

func (l *logRing) printf(format string, args ...any) {
	l.add(StreamWisp, fmt.Sprintf(format, args...))
}

// streamWriter is the io.Writer given to the module as stdout or stderr.
// Each Write is split into lines; a Write without a final newline is a line
// of its own (modules write whole lines in practice, and holding partial
// lines per instance would tie the log to instance lifetimes).
type streamWriter struct {
	ring   *logRing
	stream string
}

func (w streamWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		line, rest, _ := bytes.Cut(p, []byte{'\n'})
		w.ring.add(w.stream, string(bytes.TrimRight(line, "\r")))
		p = rest
	}
	return n, nil
}

func truncateUTF8(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
