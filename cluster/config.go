package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Config configures a Node. Start from DefaultConfig.
type Config struct {
	// NodeID is this node's id: the broker id clients see, the memberlist
	// name and the Raft server id. Unique, positive.
	NodeID int32
	// DataDir is the node's data directory; Raft keeps its log and stable
	// store in <DataDir>/raft/raft.db and snapshots under <DataDir>/raft/.
	DataDir string

	// GossipBind is the gossip (memberlist) TCP+UDP address. Default
	// "127.0.0.1:7946".
	GossipBind string
	// GossipAdvertise is the gossip address others reach this node at,
	// when it differs from GossipBind. Default: GossipBind.
	GossipAdvertise string
	// Join lists gossip addresses of any existing members.
	Join []string
	// GossipKey, when set, encrypts gossip (AES, 16/24/32 bytes) and
	// authenticates node-to-node QUIC streams (Raft, forwarded writes): a
	// node without it can neither join gossip nor talk to Raft. Every node
	// needs the same key.
	GossipKey []byte
	// Rack is this node's rack (or zone); replicas of a partition are spread
	// over racks first when racks are set.
	Rack string

	// BootstrapExpect is how many nodes must have met through gossip before
	// the metadata group is bootstrapped (once, when no node has Raft state
	// yet). Default 1: a lone node bootstraps itself. A node with Join
	// addresses does not bootstrap before it has met another member.
	BootstrapExpect int
	// VoterCap is how many Raft voters the group holds at most (3 or 5);
	// further nodes join as non-voters. Default 3.
	VoterCap int

	// QUICAddr is this node's advertised QUIC address (udp host:port): the
	// Raft server address and where peers forward metadata writes. It must
	// be the address of the transport.Server given to Start, reachable by
	// the other nodes.
	QUICAddr string
	// KafkaAddr and HTTPAddr are advertised to the cluster ("" when
	// disabled).
	KafkaAddr, HTTPAddr string

	// DefaultPartitions and DefaultReplicationFactor apply to CreateTopic
	// with Partitions <= 0 or ReplicationFactor <= 0. Defaults 1 and 1.
	DefaultPartitions        int32
	DefaultReplicationFactor int16
	// ValidateConfigs, when set, checks a topic's configs on the
	// controller before CreateTopic or AlterTopicConfigs commits them
	// (normally the broker's own validation). Unknown keys are always
	// refused (bus.KnownConfigs).
	ValidateConfigs func(configs map[string]string) error

	// Raft timings, tuned for a LAN: controller failover takes about 1-2 s.
	HeartbeatTimeout   time.Duration // default 750ms
	ElectionTimeout    time.Duration // default 750ms
	LeaderLeaseTimeout time.Duration // default 375ms
	// ReconcileInterval is how often the controller re-checks membership,
	// partition leaders and ISRs besides reacting to gossip events.
	// Default 500ms.
	ReconcileInterval time.Duration
	// RetryTimeout bounds how long a write waits for a controller (an
	// election, a forwarding failure) before it fails with
	// kerr.NotController. Default 5s.
	RetryTimeout time.Duration

	// Gossip failure detection, see package gossip. Defaults 500ms, 200ms,
	// 2 and 100ms.
	ProbeInterval, ProbeTimeout time.Duration
	SuspicionMult               int
	GossipInterval              time.Duration

	// Logger receives the node's logs (Raft's at their level, memberlist's
	// at debug). Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the single-node defaults: node 1, gossip on
// 127.0.0.1:7946, QUIC 127.0.0.1:7070, bootstrap alone.
func DefaultConfig() Config {
	return Config{
		NodeID:                   1,
		DataDir:                  "./wisp-data",
		GossipBind:               "127.0.0.1:7946",
		BootstrapExpect:          1,
		VoterCap:                 3,
		QUICAddr:                 "127.0.0.1:7070",
		DefaultPartitions:        1,
		DefaultReplicationFactor: 1,
		HeartbeatTimeout:         750 * time.Millisecond,
		ElectionTimeout:          750 * time.Millisecond,
		LeaderLeaseTimeout:       375 * time.Millisecond,
		ReconcileInterval:        500 * time.Millisecond,
		RetryTimeout:             5 * time.Second,
		ProbeInterval:            500 * time.Millisecond,
		ProbeTimeout:             200 * time.Millisecond,
		SuspicionMult:            2,
		GossipInterval:           100 * time.Millisecond,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.NodeID <= 0 {
		return fmt.Errorf("cluster: NodeID %d must be positive", c.NodeID)
	}
	if c.DataDir == "" {
		return errors.New("cluster: DataDir is empty")
	}
	if c.BootstrapExpect < 1 {
		return fmt.Errorf("cluster: BootstrapExpect %d must be at least 1", c.BootstrapExpect)
	}
	if c.VoterCap < 1 {
		return fmt.Errorf("cluster: VoterCap %d must be at least 1", c.VoterCap)
	}
	host, port, err := net.SplitHostPort(c.QUICAddr)
	if err != nil {
		return fmt.Errorf("cluster: QUICAddr %q: %w", c.QUICAddr, err)
	}
	if port == "0" || port == "" {
		return fmt.Errorf("cluster: QUICAddr %q needs a concrete port", c.QUICAddr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return fmt.Errorf("cluster: QUICAddr %q must be an address other nodes can reach, not a wildcard", c.QUICAddr)
	}
	switch len(c.GossipKey) {
	case 0, 16, 24, 32:
	default:
		return fmt.Errorf("cluster: GossipKey is %d bytes; AES needs 16, 24 or 32", len(c.GossipKey))
	}
	if c.DefaultPartitions <= 0 || c.DefaultReplicationFactor <= 0 {
		return errors.New("cluster: DefaultPartitions and DefaultReplicationFactor must be positive")
	}
	if c.HeartbeatTimeout <= 0 || c.ElectionTimeout <= 0 || c.LeaderLeaseTimeout <= 0 {
		return errors.New("cluster: Raft timeouts must be positive")
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		return errors.New("cluster: LeaderLeaseTimeout must not exceed HeartbeatTimeout")
	}
	if c.ReconcileInterval <= 0 || c.RetryTimeout <= 0 {
		return errors.New("cluster: ReconcileInterval and RetryTimeout must be positive")
	}
	return nil
}
