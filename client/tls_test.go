package client

import (
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wispbus/wisp/transport"
)

func selfSignedDER(t *testing.T) []byte {
	t.Helper()
	c, _, err := transport.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(c)
	return blk.Bytes
}

func TestServerTrust(t *testing.T) {
	certA, certB := selfSignedDER(t), selfSignedDER(t)
	kh := filepath.Join(t.TempDir(), "wisp", "known_hosts")
	verify := func(addr string, mut func(*cfg), der []byte) error {
		c := defaultCfg()
		c.knownHosts = kh
		if mut != nil {
			mut(&c)
		}
		tc, err := c.buildTLS(addr)
		if err != nil {
			t.Fatal(err)
		}
		return tc.VerifyPeerCertificate([][]byte{der}, nil)
	}
	// Loopback: a self-signed certificate is accepted, pinned or not.
	for _, addr := range []string{"127.0.0.1:7070", "[::1]:7070", "localhost:7070"} {
		if err := verify(addr, nil, certA); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	// Elsewhere: refused without a CA...
	remote := "192.0.2.10:7070"
	if err := verify(remote, nil, certA); err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Fatalf("remote self-signed: %v", err)
	}
	// ...accepted with --insecure, which pins it...
	if err := verify(remote, func(c *cfg) { c.insecure = true }, certA); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(kh)
	if !strings.HasPrefix(string(raw), remote+" "+fingerprint(certA)) {
		t.Fatalf("known_hosts: %q", raw)
	}
	// ...so later connections verify against the pin without --insecure,
	if err := verify(remote, nil, certA); err != nil {
		t.Fatalf("pinned: %v", err)
	}
	// and a different certificate is an error, even with --insecure.
	for _, mut := range []func(*cfg){nil, func(c *cfg) { c.insecure = true }} {
		if err := verify(remote, mut, certB); err == nil || !strings.Contains(err.Error(), "changed") {
			t.Fatalf("changed certificate: %v", err)
		}
	}
	// A CA that signed the certificate is enough on its own.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certB}), 0o644)
	if err := verify("localhost:7070", func(c *cfg) { c.tlsCA = caFile; c.knownHosts = "" }, certB); err != nil {
		t.Fatal(err)
	}
}

// The client trusts a node's self-signed certificate on loopback and
// verifies it against the data dir's certificate given as CA.
func TestConnectWithDataDirCA(t *testing.T) {
	n := startNode(t, nil)
	certFile, _ := transport.SelfSignedPaths(n.dir)
	ctx := testCtx(t, 10*time.Second)
	c, err := New(ctx, Servers(n.addr), TLSCA(certFile), TLSServerName("localhost"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.ClusterInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NodeID != 1 || info.Nodes[0].Addrs["quic"] != n.addr {
		t.Fatalf("cluster info %+v", info)
	}
	if _, err := New(ctx, Servers("127.0.0.1:1"), DialTimeout(300*time.Millisecond)); !errors.Is(err, ErrConnection) {
		t.Fatalf("dial nothing: %v", err)
	}
}
