package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/wispbus/wisp/bus"
)

// DefaultMaxBodyBytes is the default limit on a request body (8 MiB). An
// NDJSON stream has no total limit; each of its lines has this one.
const DefaultMaxBodyBytes = 8 << 20

// Config configures a Server. Start from DefaultConfig.
type Config struct {
	// Addr is the TCP address to listen on. Default "127.0.0.1:8080";
	// "127.0.0.1:0" picks a free port (see Server.Addr).
	Addr string
	// MaxBodyBytes bounds a request body (and each line of an NDJSON
	// stream); larger bodies get 413 and nothing is written. Default 8 MiB.
	MaxBodyBytes int64
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
	// Forward, when set, appends batches to a partition this node does
	// not lead, on its leader, with acks=all. In a cluster the server
	// wires it to the peer links, so that an HTTP client may post to any
	// node (unlike Kafka and native clients, an HTTP client cannot follow
	// a leader by itself). Nil: such records fail with the retriable
	// NOT_LEADER_OR_FOLLOWER error.
	Forward func(ctx context.Context, topic string, partition int32, batches []byte) (bus.ProduceResult, error)
}

// DefaultConfig returns the single-node defaults of DESIGN.md.
func DefaultConfig() Config {
	return Config{Addr: "127.0.0.1:8080", MaxBodyBytes: DefaultMaxBodyBytes}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Addr == "" {
		return errors.New("httpapi: Addr is empty")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("httpapi: Addr %q: %w", c.Addr, err)
	}
	if c.MaxBodyBytes <= 0 {
		return errors.New("httpapi: MaxBodyBytes must be positive")
	}
	return nil
}
