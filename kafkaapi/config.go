package kafkaapi

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
)

// Config configures a Server. Start from DefaultConfig.
type Config struct {
	// Addr is the TCP address to listen on. Default "127.0.0.1:9092"; port
	// 0 picks a free port (see Server.Addr).
	Addr string
	// AdvertisedAddr is the "host:port" that Metadata, FindCoordinator and
	// DescribeCluster tell clients to connect to. Empty: the bound address,
	// or, when bound to an unspecified address (0.0.0.0, [::]), the local
	// address of each client's connection.
	AdvertisedAddr string
	// MaxRequestBytes bounds one request frame (the 4-byte size field
	// excluded). It is checked before anything is allocated; a larger frame
	// closes the connection with a log line. Default 100 MiB.
	MaxRequestBytes int
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultMaxRequestBytes is the default Config.MaxRequestBytes (Kafka's
// socket.request.max.bytes).
const DefaultMaxRequestBytes = 100 << 20

// DefaultConfig returns the single-node defaults of DESIGN.md.
func DefaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:9092",
		MaxRequestBytes: DefaultMaxRequestBytes,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("kafkaapi: Addr %q: %w", c.Addr, err)
	}
	if c.AdvertisedAddr != "" {
		host, port, err := net.SplitHostPort(c.AdvertisedAddr)
		if err != nil {
			return fmt.Errorf("kafkaapi: AdvertisedAddr %q: %w", c.AdvertisedAddr, err)
		}
		if host == "" {
			return fmt.Errorf("kafkaapi: AdvertisedAddr %q has no host", c.AdvertisedAddr)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return fmt.Errorf("kafkaapi: AdvertisedAddr %q: port must be 1-65535", c.AdvertisedAddr)
		}
	}
	if c.MaxRequestBytes < 64<<10 || c.MaxRequestBytes > 1<<30 {
		return fmt.Errorf("kafkaapi: MaxRequestBytes %d not in [64 KiB, 1 GiB]", c.MaxRequestBytes)
	}
	return nil
}
