package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wispbus/wisp/internal/server"
)

func newServeCmd() *cobra.Command {
	def := server.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a wisp node",
		Long: `Run a wisp node. With no flags it starts a single node on the embedded
defaults: data in ./wisp-data, QUIC on 127.0.0.1:7070 (udp), Kafka on
127.0.0.1:9092, HTTP on 127.0.0.1:8080.

Every flag can be set as WISP_<FLAG> in the environment (WISP_DATA,
WISP_KAFKA, ...) or as a key of the YAML file given with --config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path, _ := cmd.Flags().GetString("config"); path != "" {
				if err := applyConfigFile(cmd, path); err != nil {
					return err
				}
			}
			logger, err := newLogger(cmd, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			cfg := server.DefaultConfig()
			f := cmd.Flags()
			cfg.DataDir, _ = f.GetString("data")
			cfg.NodeID, _ = f.GetInt32("node-id")
			cfg.QUICAddr, _ = f.GetString("quic")
			cfg.KafkaAddr, _ = f.GetString("kafka")
			cfg.KafkaAdvertised, _ = f.GetString("kafka-advertised")
			cfg.HTTPAddr, _ = f.GetString("http")
			cfg.TLSCert, _ = f.GetString("tls-cert")
			cfg.TLSKey, _ = f.GetString("tls-key")
			cfg.TLSCA, _ = f.GetString("tls-ca")
			cfg.RequireClientCert, _ = f.GetBool("tls-client-auth")
			cfg.DefaultPartitions, _ = f.GetInt32("default-partitions")
			cfg.AutoCreateTopics, _ = f.GetBool("auto-create-topics")
			cfg.Functions, _ = f.GetBool("functions")
			cfg.Cluster, _ = f.GetBool("cluster")
			cfg.GossipAddr, _ = f.GetString("gossip")
			cfg.Join, _ = f.GetStringSlice("join")
			cfg.BootstrapExpect, _ = f.GetInt("bootstrap-expect")
			cfg.GossipKey, _ = f.GetString("gossip-key")
			cfg.Rack, _ = f.GetString("rack")
			cfg.Advertise, _ = f.GetString("advertise")
			cfg.ReplicaLagMax, _ = f.GetDuration("replica-lag-max")
			defaults, _ := f.GetStringSlice("topic-default")
			cfg.TopicDefaults = map[string]string{}
			for _, kv := range defaults {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--topic-default %q: want key=value", kv)
				}
				cfg.TopicDefaults[k] = v
			}
			cfg.Logger = logger
			cfg.Version = Version
			return server.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.String("config", "", "YAML file whose keys are these flag names")
	f.String("data", def.DataDir, "data directory")
	f.Int32("node-id", def.NodeID, "this node's id")
	f.String("quic", def.QUICAddr, "QUIC listen address (udp): native protocol")
	f.String("kafka", def.KafkaAddr, "Kafka protocol listen address (tcp); empty disables it")
	f.String("kafka-advertised", "", "address Kafka clients are told to connect to (default: the listen address)")
	f.String("http", def.HTTPAddr, "HTTP listen address: produce endpoint, /metrics, /healthz; empty disables it")
	f.String("tls-cert", "", "TLS certificate (PEM) for QUIC; default: a self-signed one kept in the data dir")
	f.String("tls-key", "", "TLS private key (PEM) for --tls-cert")
	f.String("tls-ca", "", "CA bundle (PEM) to verify client certificates")
	f.Bool("tls-client-auth", false, "require client certificates signed by --tls-ca (mTLS)")
	f.Int32("default-partitions", def.DefaultPartitions, "partitions of auto-created topics and of topics created without -p")
	f.Bool("auto-create-topics", def.AutoCreateTopics, "create unknown topics on first produce or metadata request")
	f.Bool("functions", def.Functions, "run WASM functions (wisp fn); data and compiled code in <data>/functions")
	f.Bool("cluster", false, "run as a cluster node even alone (implied by --join or --bootstrap-expect > 1); others can --join it later")
	f.String("gossip", def.GossipAddr, "gossip (memberlist) listen address, tcp and udp; cluster nodes only")
	f.StringSlice("join", nil, "gossip addresses of cluster members to join (host:port, comma-separated)")
	f.Int("bootstrap-expect", def.BootstrapExpect, "form the cluster metadata once this many nodes have met through gossip")
	f.String("gossip-key", "", "base64 AES key (16, 24 or 32 bytes) encrypting gossip; nodes without it cannot join")
	f.String("rack", "", "rack (or zone) of this node: replicas of a partition are spread over racks")
	f.String("advertise", "", "host other nodes and clients use to reach this node (default: the listen addresses' hosts)")
	f.Duration("replica-lag-max", def.ReplicaLagMax, "a follower not caught up for this long leaves the ISR")
	f.StringSlice("topic-default", nil, "broker-wide topic config default key=value (e.g. flush=os, retention.ms=3600000); repeatable")
	return cmd
}
