package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Config configures a Gossip. Start from DefaultConfig.
type Config struct {
	// NodeID is this node's id; it is the memberlist node name and must be
	// unique in the cluster and positive.
	NodeID int32
	// BindAddr is the TCP and UDP address memberlist listens on. Default
	// "127.0.0.1:7946"; port 0 picks a free port (see Gossip.LocalAddr).
	BindAddr string
	// Advertise is the address other members reach this node at, when it
	// differs from BindAddr (NAT, 0.0.0.0 binds). Default: BindAddr.
	Advertise string
	// Join lists gossip addresses (host:port) of any members. The node
	// keeps trying them in the background until one answers, and later
	// retries those that are not alive members every RejoinInterval, so a
	// node that was declared dead during a network partition finds its way
	// back.
	Join []string
	// Key, when set, encrypts and authenticates gossip with AES-GCM
	// (memberlist's SecretKey): 16, 24 or 32 bytes. Nodes without the key
	// cannot join.
	Key []byte
	// Meta is what this node tells the others about itself.
	Meta Meta
	// OnEvent, when set, receives every membership event in order, from a
	// goroutine owned by the Gossip (it may block, which delays later
	// events only).
	OnEvent func(Event)
	// RejoinInterval is how often Join addresses that are not alive members
	// are retried. Default 10s.
	RejoinInterval time.Duration

	// Failure detection. The defaults suit a LAN or loopback: a node killed
	// with SIGKILL is declared dead in about 1-2 s.

	// ProbeInterval is the interval between failure probes. Default 500ms.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a direct probe waits for its ack before the
	// indirect probes. Default 200ms.
	ProbeTimeout time.Duration
	// SuspicionMult scales how long a suspected node has to refute before
	// it is declared dead (SuspicionMult * ProbeInterval, more in larger
	// clusters). Default 2.
	SuspicionMult int
	// GossipInterval is the interval between gossip rounds. Default 100ms.
	GossipInterval time.Duration
	// PushPullInterval is the interval of full state syncs. Default 5s.
	PushPullInterval time.Duration

	// Logger receives this package's logs, and memberlist's at debug level.
	// Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults of DESIGN.md (gossip on
// 127.0.0.1:7946) with LAN failure-detection timings.
func DefaultConfig() Config {
	return Config{
		NodeID:           1,
		BindAddr:         "127.0.0.1:7946",
		RejoinInterval:   10 * time.Second,
		ProbeInterval:    500 * time.Millisecond,
		ProbeTimeout:     200 * time.Millisecond,
		SuspicionMult:    2,
		GossipInterval:   100 * time.Millisecond,
		PushPullInterval: 5 * time.Second,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.NodeID <= 0 {
		return fmt.Errorf("gossip: NodeID %d must be positive", c.NodeID)
	}
	if c.Meta.ID != 0 && c.Meta.ID != c.NodeID {
		return fmt.Errorf("gossip: Meta.ID %d differs from NodeID %d", c.Meta.ID, c.NodeID)
	}
	if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
		return fmt.Errorf("gossip: BindAddr %q: %w", c.BindAddr, err)
	}
	if c.Advertise != "" {
		if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
			return fmt.Errorf("gossip: Advertise %q: %w", c.Advertise, err)
		}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("gossip: Join %q: %w", j, err)
		}
	}
	switch len(c.Key) {
	case 0, 16, 24, 32:
	default:
		return fmt.Errorf("gossip: Key is %d bytes; AES needs 16, 24 or 32", len(c.Key))
	}
	if c.RejoinInterval <= 0 {
		return errors.New("gossip: RejoinInterval must be positive")
	}
	if c.ProbeInterval <= 0 || c.ProbeTimeout <= 0 || c.GossipInterval <= 0 || c.PushPullInterval <= 0 {
		return errors.New("gossip: ProbeInterval, ProbeTimeout, GossipInterval and PushPullInterval must be positive")
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return errors.New("gossip: ProbeTimeout must be below ProbeInterval")
	}
	if c.SuspicionMult < 1 {
		return errors.New("gossip: SuspicionMult must be at least 1")
	}
	return nil
}
