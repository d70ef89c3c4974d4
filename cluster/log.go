package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// newHCLogger routes hashicorp/raft's logs to slog: raft writes JSON lines
// to hclogWriter, which re-emits each as a record (trace, debug and info at
// debug level, warnings and errors at theirs) with its fields as
// attributes.
func newHCLogger(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "raft",
		Level:      hclog.Info,
		Output:     &hclogWriter{log: l},
		JSONFormat: true,
	})
}

type hclogWriter struct{ log *slog.Logger }

func (w *hclogWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			w.log.Debug(string(line), "component", "raft")
			continue
		}
		level := slog.LevelDebug
		switch lv, _ := rec["@level"].(string); strings.ToLower(lv) {
		case "warn":
			level = slog.LevelWarn
		case "error":
			level = slog.LevelError
		}
		msg, _ := rec["@message"].(string)
		if level == slog.LevelError && connEnded(msg, rec["error"]) {
			level = slog.LevelDebug
		}
		if !w.log.Enabled(context.Background(), level) {
			continue
		}
		attrs := []any{"component", "raft"}
		for k, v := range rec {
			if !strings.HasPrefix(k, "@") {
				attrs = append(attrs, k, v)
			}
		}
		w.log.Log(context.Background(), level, msg, attrs...)
	}
	return len(p), nil
}

// connEnded tells raft's transport errors that only say a peer closed its
// stream or connection (a node restarting or leaving; raft reconnects),
// which raft logs as errors, from real ones.
func connEnded(msg string, errField any) bool {
	e, _ := errField.(string)
	switch msg {
	case "failed to decode incoming command", "failed to flush response":
	default:
		return false
	}
	return strings.Contains(e, "Application error") || strings.Contains(e, "canceled by remote") ||
		strings.Contains(e, "EOF") || strings.Contains(e, "closed")
}
