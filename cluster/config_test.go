package cluster

import (
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"node id", func(c *Config) { c.NodeID = 0 }, false},
		{"data dir", func(c *Config) { c.DataDir = "" }, false},
		{"bootstrap expect", func(c *Config) { c.BootstrapExpect = 0 }, false},
		{"voter cap", func(c *Config) { c.VoterCap = 0 }, false},
		{"quic port 0", func(c *Config) { c.QUICAddr = "127.0.0.1:0" }, false},
		{"quic wildcard", func(c *Config) { c.QUICAddr = "0.0.0.0:7070" }, false},
		{"quic no host", func(c *Config) { c.QUICAddr = ":7070" }, false},
		{"quic name", func(c *Config) { c.QUICAddr = "node1.example:7070" }, true},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = 2 * c.HeartbeatTimeout }, false},
		{"retry", func(c *Config) { c.RetryTimeout = 0 }, false},
		{"defaults", func(c *Config) { c.DefaultReplicationFactor = 0 }, false},
		{"reconcile", func(c *Config) { c.ReconcileInterval = -time.Second }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v", err)
			}
		})
	}
}
