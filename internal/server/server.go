// Package server assembles one wisp node: the broker core and every
// frontend (QUIC, Kafka, HTTP), started in order and stopped in reverse.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/cluster"
	"github.com/wispbus/wisp/functions"
	"github.com/wispbus/wisp/httpapi"
	"github.com/wispbus/wisp/kafkaapi"
	"github.com/wispbus/wisp/transport"
)

// Config is a node's configuration. Empty Kafka or HTTP addresses disable
// that frontend.
type Config struct {
	DataDir           string
	NodeID            int32
	QUICAddr          string
	KafkaAddr         string
	KafkaAdvertised   string
	HTTPAddr          string
	TLSCert           string
	TLSKey            string
	TLSCA             string
	RequireClientCert bool
	DefaultPartitions int32
	AutoCreateTopics  bool
	TopicDefaults     map[string]string
	Version           string // reported by cluster info
	Logger            *slog.Logger
	// Functions runs WASM functions (deployments and compiled code under
	// <DataDir>/functions). On in DefaultConfig.
	Functions bool

	// Cluster makes this node a cluster member even alone; Join or
	// BootstrapExpect > 1 imply it. Without it the node is a single node
	// that decides everything locally (no gossip, no Raft).
	Cluster bool
	// GossipAddr is the memberlist address (tcp and udp).
	GossipAddr string
	// Join lists gossip addresses of members to join.
	Join []string
	// BootstrapExpect is how many nodes must meet before the metadata
	// group forms (1: alone).
	BootstrapExpect int
	// GossipKey is a base64 AES key encrypting gossip ("" = none).
	GossipKey string
	// Rack spreads replicas over racks.
	Rack string
	// Advertise is the host advertised to other nodes and to clients
	// ("" = the hosts of the listen addresses).
	Advertise string
	// ReplicaLagMax is how long a follower may lag before it leaves the ISR.
	ReplicaLagMax time.Duration
}

// Clustered reports whether the node runs as a cluster member.
func (c Config) Clustered() bool {
	return c.Cluster || len(c.Join) > 0 || c.BootstrapExpect > 1
}

// DefaultConfig returns the single-node defaults of DESIGN.md.
func DefaultConfig() Config {
	return Config{
		DataDir:           "./wisp-data",
		NodeID:            1,
		QUICAddr:          "127.0.0.1:7070",
		KafkaAddr:         "127.0.0.1:9092",
		HTTPAddr:          "127.0.0.1:8080",
		DefaultPartitions: 1,
		AutoCreateTopics:  true,
		Version:           "dev",
		Functions:         true,
		GossipAddr:        "127.0.0.1:7946",
		BootstrapExpect:   1,
		ReplicaLagMax:     10 * time.Second,
	}
}

// Node is a running wisp node.
type Node struct {
	Broker *bus.Broker
	QUIC   *transport.Server
	Kafka  *kafkaapi.Server
	HTTP   *httpapi.Server
	// Functions is the node's function manager, nil when disabled.
	Functions *functions.Manager
	// Cluster is the node's cluster membership, nil on a single node.
	Cluster *cluster.Node
	peers   *transport.Peers
	fnc     *fnCluster // the functions' view of the cluster, nil unless both run
	logger  *slog.Logger
}

// Start opens the broker and starts every frontend. On error, whatever was
// started is stopped again.
func Start(cfg Config) (*Node, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	bcfg := bus.DefaultConfig()
	bcfg.DataDir = cfg.DataDir
	bcfg.NodeID = cfg.NodeID
	bcfg.DefaultPartitions = cfg.DefaultPartitions
	bcfg.AutoCreateTopics = cfg.AutoCreateTopics
	bcfg.TopicDefaults = cfg.TopicDefaults
	bcfg.Logger = logger
	bcfg.Clustered = cfg.Clustered()
	bcfg.OffsetsReplicas = int16(min(3, max(1, cfg.BootstrapExpect)))
	if cfg.ReplicaLagMax > 0 {
		bcfg.ReplicaLagMax = cfg.ReplicaLagMax
	}
	b, err := bus.Open(bcfg)
	if err != nil {
		return nil, err
	}
	n := &Node{Broker: b, logger: logger}
	fail := func(err error) (*Node, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Close(ctx)
		return nil, err
	}

	// Functions: after the broker, before the frontends that serve their
	// APIs; closed after the frontends, before the broker (Close).
	if cfg.Functions {
		fcfg := functions.DefaultConfig()
		fcfg.DataDir = filepath.Join(cfg.DataDir, "functions")
		fcfg.Logger = logger.With("component", "functions")
		if cfg.Clustered() {
			n.fnc = &fnCluster{b: b}
			fcfg.Cluster, fcfg.Leads = n.fnc, n.fnc.Leads
			fcfg.ScanInterval = time.Second // Kick on topic changes does most of it
		}
		if n.Functions, err = functions.Open(fcfg, b); err != nil {
			return fail(err)
		}
	}

	tcfg := transport.DefaultConfig()
	tcfg.Addr = cfg.QUICAddr
	tcfg.DataDir = cfg.DataDir
	tcfg.TLSCert, tcfg.TLSKey, tcfg.TLSCA = cfg.TLSCert, cfg.TLSKey, cfg.TLSCA
	tcfg.RequireClientCert = cfg.RequireClientCert
	tcfg.Logger = logger.With("frontend", "quic")
	tcfg.Version = cfg.Version
	tcfg.Listeners = map[string]string{}
	if n.Functions != nil {
		tcfg.Functions = n.Functions
	}
	if cfg.KafkaAddr != "" {
		tcfg.Listeners["kafka"] = cfg.KafkaAddr
	}
	if cfg.HTTPAddr != "" {
		tcfg.Listeners["http"] = cfg.HTTPAddr
	}
	if n.QUIC, err = transport.NewServer(tcfg, b); err != nil {
		return fail(err)
	}
	// Cluster: it registers its protocol on the QUIC endpoint, so before
	// that starts; the broker follows leaders once both run.
	if cfg.Clustered() {
		var applier cluster.Applier = b
		if n.fnc != nil {
			applier = fnApplier{Broker: b, fns: n.Functions}
		}
		if n.Cluster, err = startCluster(cfg, n.QUIC, applier, logger); err != nil {
			return fail(err)
		}
		if n.fnc != nil {
			n.fnc.node.Store(n.Cluster)
		}
	}
	if err := n.QUIC.Start(); err != nil {
		n.QUIC = nil
		return fail(fmt.Errorf("quic %s: %w", cfg.QUICAddr, err))
	}
	if n.Cluster != nil {
		n.peers = transport.NewPeers(n.QUIC, resolver(n.Cluster))
		b.SetCluster(n.Cluster, n.peers)
		if n.fnc != nil {
			n.fnc.peers.Store(n.peers)
		}
		n.QUIC.SetClusterStatus(func() []byte {
			raw, _ := json.Marshal(n.Cluster.Status())
			return raw
		})
	}

	if cfg.KafkaAddr != "" {
		kcfg := kafkaapi.DefaultConfig()
		kcfg.Addr = cfg.KafkaAddr
		kcfg.AdvertisedAddr = cfg.KafkaAdvertised
		kcfg.Logger = logger.With("frontend", "kafka")
		if n.Kafka, err = kafkaapi.New(kcfg, b); err != nil {
			return fail(err)
		}
		if err := n.Kafka.Start(); err != nil {
			n.Kafka = nil
			return fail(fmt.Errorf("kafka %s: %w", cfg.KafkaAddr, err))
		}
	}

	if cfg.HTTPAddr != "" {
		hcfg := httpapi.DefaultConfig()
		hcfg.Addr = cfg.HTTPAddr
		hcfg.Logger = logger.With("frontend", "http")
		if n.peers != nil {
			// HTTP clients cannot follow leaders: records for a partition
			// led elsewhere are produced on its leader.
			fwd := &fnCluster{b: b}
			fwd.peers.Store(n.peers)
			hcfg.Forward = fwd.Produce
		}
		if n.HTTP, err = httpapi.New(hcfg, b); err != nil {
			return fail(err)
		}
		if n.Functions != nil {
			n.HTTP.MountFunctions(n.Functions)
		}
		if err := n.HTTP.Start(); err != nil {
			n.HTTP = nil
			return fail(fmt.Errorf("http %s: %w", cfg.HTTPAddr, err))
		}
	}
	attrs := []any{"data", cfg.DataDir, "quic", n.QUIC.Addr().String()}
	if n.Kafka != nil {
		attrs = append(attrs, "kafka", n.Kafka.Addr().String())
	}
	if n.HTTP != nil {
		attrs = append(attrs, "http", n.HTTP.Addr().String())
	}
	logger.Info("wisp node ready", attrs...)
	return n, nil
}

// Close stops the frontends first (no new requests), then the functions
// (workers finish the unit they are writing), then flushes and closes the
// broker.
func (n *Node) Close(ctx context.Context) error {
	var errs []error
	if n.fnc != nil && n.Functions != nil {
		// In a cluster workers write to and commit on other nodes through
		// the QUIC endpoint: stop them while it still runs.
		errs = append(errs, n.Functions.Close())
	}
	if n.HTTP != nil {
		errs = append(errs, n.HTTP.Close(ctx))
	}
	if n.Kafka != nil {
		errs = append(errs, n.Kafka.Close(ctx))
	}
	if n.QUIC != nil {
		errs = append(errs, n.QUIC.Close(ctx))
	}
	if n.Functions != nil {
		errs = append(errs, n.Functions.Close())
	}
	if n.Cluster != nil {
		// Leave gossip and stop Raft while the QUIC endpoint still runs.
		errs = append(errs, n.Cluster.Close(ctx))
	}
	if n.peers != nil {
		n.peers.Close()
	}
	errs = append(errs, n.Broker.Close())
	return errors.Join(errs...)
}

// Run starts a node and blocks until ctx is done (Ctrl-C), then shuts it
// down cleanly: frontends stop, logs are flushed and segments closed.
func Run(ctx context.Context, cfg Config) error {
	n, err := Start(cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	n.logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := n.Close(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	n.logger.Info("stopped")
	return nil
}
