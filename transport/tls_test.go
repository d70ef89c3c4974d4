package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wispbus/wisp/transport/wire"
)

func TestSelfSignedCertificateKeptInDataDir(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Addr = "192.0.2.7:7070"
	cfg.DataDir = dir
	if _, err := serverTLS(cfg); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := SelfSignedPaths(dir)
	first, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	blk, _ := pem.Decode(first)
	crt, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"127.0.0.1", "::1", "192.0.2.7"} {
		if err := crt.VerifyHostname(ip); err != nil {
			t.Errorf("SAN %s: %v", ip, err)
		}
	}
	if err := crt.VerifyHostname("localhost"); err != nil {
		t.Error(err)
	}
	if crt.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm %v", crt.PublicKeyAlgorithm)
	}
	// A restart keeps the same certificate, so pinned clients still trust it.
	if _, err := serverTLS(cfg); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(certFile)
	if !bytes.Equal(first, again) {
		t.Fatal("certificate regenerated on restart")
	}
}

func writePEMPair(t *testing.T, dir, name string, hosts ...string) (cert, key string) {
	t.Helper()
	c, k, err := SelfSigned(hosts...)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(cert, c, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// With TLSCA and RequireClientCert, only clients presenting a certificate
// signed by the CA get in.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	caCert, caKey := writePEMPair(t, dir, "client-ca")
	n := startNode(t, func(c *Config) {
		c.TLSCA = caCert
		c.RequireClientCert = true
	})
	addr := n.srv.Addr().String()
	try := func(certs []tls.Certificate) error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		conn, err := quic.DialAddr(ctx, addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{wire.ALPN},
			Certificates: certs}, nil)
		if err != nil {
			return err
		}
		defer conn.CloseWithError(0, "")
		// TLS 1.3: a rejected client certificate shows on first use.
		str, err := conn.OpenStreamSync(ctx)
		if err != nil {
			return err
		}
		_ = str.SetDeadline(time.Now().Add(3 * time.Second))
		str.Write(wire.AppendFrame(nil, &wire.ClusterInfoRequest{}))
		str.Close()
		_, err = wire.ReadFrame(str, nil, wire.DefaultMaxFrame)
		return err
	}
	if err := try(nil); err == nil {
		t.Fatal("client without certificate accepted")
	}
	otherCert, otherKey := writePEMPair(t, dir, "other")
	other, _ := tls.LoadX509KeyPair(otherCert, otherKey)
	if err := try([]tls.Certificate{other}); err == nil {
		t.Fatal("client with a certificate of another CA accepted")
	}
	good, err := tls.LoadX509KeyPair(caCert, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := try([]tls.Certificate{good}); err != nil {
		t.Fatalf("client with a good certificate: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.Addr = "nope" },
		func(c *Config) { c.TLSCert = "x" },
		func(c *Config) { c.DataDir = "" },
		func(c *Config) { c.RequireClientCert = true },
		func(c *Config) { c.MaxFrameBytes = 10 },
		func(c *Config) { c.MaxStreamsPerConn = 1 },
	}
	for i, mut := range bad {
		c := DefaultConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("case %d: invalid config accepted", i)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
