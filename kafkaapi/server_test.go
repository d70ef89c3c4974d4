package kafkaapi

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		err  string
	}{
		{"default", func(*Config) {}, ""},
		{"all interfaces", func(c *Config) { c.Addr = ":9092" }, ""},
		{"advertised", func(c *Config) { c.AdvertisedAddr = "kafka.example.com:19092" }, ""},
		{"bad addr", func(c *Config) { c.Addr = "9092" }, "Addr"},
		{"advertised without port", func(c *Config) { c.AdvertisedAddr = "host" }, "AdvertisedAddr"},
		{"advertised without host", func(c *Config) { c.AdvertisedAddr = ":9092" }, "no host"},
		{"advertised port 0", func(c *Config) { c.AdvertisedAddr = "h:0" }, "port"},
		{"small frames", func(c *Config) { c.MaxRequestBytes = 1000 }, "MaxRequestBytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			err := cfg.Validate()
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Validate: %v, want %q", err, tc.err)
			}
		})
	}
	if _, err := New(DefaultConfig(), nil); err == nil {
		t.Fatal("New with a nil broker")
	}
}

// TestAdvertisedAddr: Metadata names the configured address.
func TestAdvertisedAddr(t *testing.T) {
	ts := startServer(t)
	cfg := DefaultConfig()
	cfg.Addr, cfg.AdvertisedAddr, cfg.Logger = "127.0.0.1:0", "kafka.example.com:19092", ts.bcfg.Logger
	s, err := New(cfg, ts.b)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	c := dialRaw(t, &testServer{addr: s.Addr().String()})
	c.send(kmsg.NewPtrMetadataRequest(), 9, 1)
	resp := kmsg.NewPtrMetadataResponse()
	c.recv(resp, 9, 1)
	if b := resp.Brokers[0]; b.Host != "kafka.example.com" || b.Port != 19092 {
		t.Fatalf("advertised %s:%d", b.Host, b.Port)
	}
	if err := s.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
}

// TestCloseInFlight: Close ends long polls and blocked joins at once and
// waits for every goroutine.
func TestCloseInFlight(t *testing.T) {
	ts := startServer(t)
	createTopic(t, ts, "slow", 1)
	fetcher := dialRaw(t, ts)
	fetcher.send(fetchReq("slow", 0, 0, 60000, 1), 11, 1)

	join := func(c *rawConn, corr int32) {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis, req.ProtocolType = "slowgroup", 60000, 60000, "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = "range"
		req.Protocols = []kmsg.JoinGroupRequestProtocol{p}
		c.send(req, 3, corr)
	}
	first := dialRaw(t, ts)
	join(first, 1)
	first.recv(kmsg.NewPtrJoinGroupResponse(), 3, 1)
	// A second member: its join waits for the first to join again, for
	// up to the 60s rebalance timeout.
	second := dialRaw(t, ts)
	join(second, 1)
	checkFor(t, 5*time.Second, func() error {
		if d, _ := ts.b.Groups().DescribeGroup("slowgroup"); d.State != "PreparingRebalance" {
			return fmt.Errorf("group %s", d.State)
		}
		return nil
	})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	fetcher.expectClosed()
	second.expectClosed()
	if err := ts.s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := ts.s.Start(); err != ErrServerClosed {
		t.Fatalf("Start after Close: %v", err)
	}
}
