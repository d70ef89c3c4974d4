package transport

import (
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/wispbus/wisp/transport/wire"
)

// Config configures a Server. Start from DefaultConfig.
type Config struct {
	// Addr is the UDP address to listen on. Default "127.0.0.1:7070"; port
	// 0 picks a free port (see Server.Addr).
	Addr string
	// DataDir is where a self-signed certificate is generated and kept
	// (<DataDir>/tls/cert.pem and key.pem) when TLSCert is empty.
	DataDir string
	// TLSCert and TLSKey are PEM files of the server certificate (chain)
	// and its key. Both empty: the self-signed certificate of DataDir.
	TLSCert, TLSKey string
	// TLSCA is a PEM bundle of CAs that verify client certificates; when
	// set, a client certificate is verified if presented, and required with
	// RequireClientCert (mutual TLS).
	TLSCA string
	// RequireClientCert rejects clients without a certificate signed by
	// TLSCA. It needs TLSCA.
	RequireClientCert bool
	// MaxFrameBytes bounds one frame in either direction, the 4-byte length
	// field included. Default 16 MiB (wire.DefaultMaxFrame). A larger frame
	// fails its stream with wire.StreamCodeTooLarge; the connection stays.
	MaxFrameBytes int
	// MaxStreamsPerConn bounds the streams a client may have open at once
	// (QUIC MAX_STREAMS). Default 1000.
	MaxStreamsPerConn int64
	// Version is reported by ClusterInfo. Default "dev".
	Version string
	// Listeners are other listener addresses of this node by name ("kafka",
	// "http"), reported by ClusterInfo and Metadata next to "quic".
	Listeners map[string]string
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
	// Functions serves the function APIs (deploy, list, logs, ...):
	// normally the node's *functions.Manager. Nil: those APIs answer that
	// functions are disabled.
	Functions Functions
}

// DefaultConfig returns the single-node defaults of DESIGN.md.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:7070",
		DataDir:           "./wisp-data",
		MaxFrameBytes:     wire.DefaultMaxFrame,
		MaxStreamsPerConn: 1000,
		Version:           "dev",
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("transport: Addr %q: %w", c.Addr, err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("transport: TLSCert and TLSKey go together")
	}
	if c.TLSCert == "" && c.DataDir == "" {
		return errors.New("transport: DataDir is needed for the self-signed certificate when TLSCert is empty")
	}
	if c.RequireClientCert && c.TLSCA == "" {
		return errors.New("transport: RequireClientCert needs TLSCA")
	}
	if c.MaxFrameBytes < 64<<10 || c.MaxFrameBytes > 1<<30 {
		return fmt.Errorf("transport: MaxFrameBytes %d not in [64 KiB, 1 GiB]", c.MaxFrameBytes)
	}
	if c.MaxStreamsPerConn < 8 {
		return fmt.Errorf("transport: MaxStreamsPerConn %d is below 8", c.MaxStreamsPerConn)
	}
	return nil
}
