package server

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"

	"github.com/wispbus/wisp/cluster"
	"github.com/wispbus/wisp/transport"
)

// advertised replaces the host of addr with host when host is set, and a
// wildcard host with 127.0.0.1 otherwise, so that what other nodes and
// clients are told is an address they can reach.
func advertised(addr, host string) string {
	if addr == "" {
		return ""
	}
	h, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch {
	case host != "":
		h = host
	case h == "" || h == "0.0.0.0" || h == "::":
		h = "127.0.0.1"
	}
	return net.JoinHostPort(h, port)
}

// startCluster joins the cluster metadata. It registers the cluster's QUIC
// protocol on srv, which must not be started yet.
func startCluster(cfg Config, srv *transport.Server, b cluster.Applier, logger *slog.Logger) (*cluster.Node, error) {
	ccfg := cluster.DefaultConfig()
	ccfg.NodeID = cfg.NodeID
	ccfg.DataDir = cfg.DataDir
	ccfg.GossipBind = cfg.GossipAddr
	gadv, err := resolveIP(advertised(cfg.GossipAddr, cfg.Advertise))
	if err != nil {
		return nil, fmt.Errorf("--advertise: %w", err)
	}
	ccfg.GossipAdvertise = gadv
	ccfg.Join = cfg.Join
	ccfg.Rack = cfg.Rack
	ccfg.BootstrapExpect = max(1, cfg.BootstrapExpect)
	ccfg.QUICAddr = advertised(cfg.QUICAddr, cfg.Advertise)
	ccfg.KafkaAddr = cfg.KafkaAdvertised
	if ccfg.KafkaAddr == "" {
		ccfg.KafkaAddr = advertised(cfg.KafkaAddr, cfg.Advertise)
	}
	ccfg.HTTPAddr = advertised(cfg.HTTPAddr, cfg.Advertise)
	ccfg.DefaultPartitions = cfg.DefaultPartitions
	ccfg.Logger = logger.With("component", "cluster")
	if cfg.GossipKey != "" {
		key, err := base64.StdEncoding.DecodeString(cfg.GossipKey)
		if err != nil {
			return nil, fmt.Errorf("--gossip-key: not base64: %w", err)
		}
		ccfg.GossipKey = key
	}
	return cluster.Start(ccfg, srv, b)
}

// resolveIP turns host:port into ip:port (gossip advertises an IP).
func resolveIP(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || net.ParseIP(host) != nil {
		return addr, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("resolve %s: %v", host, err)
	}
	return net.JoinHostPort(ips[0].String(), port), nil
}

// resolver finds a node's QUIC address in the cluster metadata.
func resolver(c *cluster.Node) func(int32) (string, bool) {
	return func(id int32) (string, bool) {
		for _, n := range c.Nodes() {
			if n.ID == id && n.QUIC != "" {
				return n.QUIC, true
			}
		}
		return "", false
	}
}
