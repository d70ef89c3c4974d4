// Package server assembles one wisp node: the broker core and every
// frontend (QUIC, Kafka, HTTP), started in order and stopped in reverse.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wispbus/wisp/bus"
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
	}
}

// Node is a running wisp node.
type Node struct {
	Broker *bus.Broker
	QUIC   *transport.Server
	Kafka  *kafkaapi.Server
	HTTP   *httpapi.Server
	logger *slog.Logger
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

	tcfg := transport.DefaultConfig()
	tcfg.Addr = cfg.QUICAddr
	tcfg.DataDir = cfg.DataDir
	tcfg.TLSCert, tcfg.TLSKey, tcfg.TLSCA = cfg.TLSCert, cfg.TLSKey, cfg.TLSCA
	tcfg.RequireClientCert = cfg.RequireClientCert
	tcfg.Logger = logger.With("frontend", "quic")
	tcfg.Version = cfg.Version
	tcfg.Listeners = map[string]string{}
	if cfg.KafkaAddr != "" {
		tcfg.Listeners["kafka"] = cfg.KafkaAddr
	}
	if cfg.HTTPAddr != "" {
		tcfg.Listeners["http"] = cfg.HTTPAddr
	}
	if n.QUIC, err = transport.NewServer(tcfg, b); err != nil {
		return fail(err)
	}
	if err := n.QUIC.Start(); err != nil {
		n.QUIC = nil
		return fail(fmt.Errorf("quic %s: %w", cfg.QUICAddr, err))
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
		if n.HTTP, err = httpapi.New(hcfg, b); err != nil {
			return fail(err)
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

// Close stops the frontends first (no new requests), then flushes and
// closes the broker.
func (n *Node) Close(ctx context.Context) error {
	var errs []error
	if n.HTTP != nil {
		errs = append(errs, n.HTTP.Close(ctx))
	}
	if n.Kafka != nil {
		errs = append(errs, n.Kafka.Close(ctx))
	}
	if n.QUIC != nil {
		errs = append(errs, n.QUIC.Close(ctx))
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
