package client

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/wispbus/wisp/transport/wire"
)

// buildTLS returns the TLS configuration for connecting to addr.
//
// Unless TLSConfig replaced it, a server certificate is accepted when:
//  1. it verifies against TLSCA (or the system roots) for the server name;
//  2. or the KnownHosts file pins it for addr (a different certificate is
//     an error, as with ssh);
//  3. or addr is a loopback address (a node's self-signed certificate);
//  4. or InsecureSkipVerify is set, which also pins it in KnownHosts, so
//     the next connection is verified without InsecureSkipVerify.
func (c *cfg) buildTLS(addr string) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("client: server %q: %w", addr, err)
	}
	if c.tlsConfig != nil {
		tc := c.tlsConfig.Clone()
		if len(tc.NextProtos) == 0 {
			tc.NextProtos = []string{wire.ALPN}
		}
		if tc.ServerName == "" && !tc.InsecureSkipVerify {
			tc.ServerName = host
		}
		return tc, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{wire.ALPN}}
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("client: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	var roots *x509.CertPool
	if c.tlsCA != "" {
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("client: TLSCA: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client: TLSCA %s: no PEM certificate", c.tlsCA)
		}
	}
	name := c.serverName
	if name == "" {
		name = host
	}
	tc.ServerName = name
	loopback := isLoopback(host)
	kh := c.knownHosts
	insecure := c.insecure
	// Verification is done by hand so that the fallbacks (pin, loopback,
	// insecure) apply after the CA check fails.
	tc.InsecureSkipVerify = true
	tc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("client: server sent no certificate")
		}
		if loopback && roots == nil {
			// Accepted whatever the system roots say: skip loading them.
			return nil
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, r := range raw {
			crt, err := x509.ParseCertificate(r)
			if err != nil {
				return fmt.Errorf("client: server certificate: %w", err)
			}
			certs[i] = crt
		}
		opts := x509.VerifyOptions{Roots: roots, DNSName: name, Intermediates: x509.NewCertPool()}
		for _, crt := range certs[1:] {
			opts.Intermediates.AddCert(crt)
		}
		_, verr := certs[0].Verify(opts)
		if verr == nil {
			return nil
		}
		fp := fingerprint(raw[0])
		if kh != "" && !loopback {
			pinned, ok, err := lookupKnownHost(kh, addr)
			if err != nil {
				return err
			}
			if ok {
				if pinned != fp {
					return fmt.Errorf("client: certificate of %s changed: %s pins sha256 %s, server presented %s "+
						"(remove the line to trust the new certificate)", addr, kh, pinned, fp)
				}
				return nil
			}
		}
		switch {
		case loopback:
			return nil
		case insecure:
			if kh != "" {
				_ = addKnownHost(kh, addr, fp)
			}
			return nil
		}
		return fmt.Errorf("client: server certificate of %s not trusted (%v); give a CA (TLSCA / --tls-ca), "+
			"or connect once with InsecureSkipVerify (--insecure) to pin it in the known hosts file", addr, verr)
	}
	return tc, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

var knownHostsMu sync.Mutex

// lookupKnownHost finds addr's pinned fingerprint in the known hosts file
// (lines "host:port sha256-hex"; # comments).
func lookupKnownHost(path, addr string) (string, bool, error) {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("client: known hosts: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && !strings.HasPrefix(fields[0], "#") && fields[0] == addr {
			return strings.ToLower(fields[1]), true, nil
		}
	}
	return "", false, sc.Err()
}

func addKnownHost(path, addr, fp string) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s %s\n", addr, fp)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// DefaultKnownHostsPath is ~/.config/wisp/known_hosts (under the user's
// config directory), the file the wisp CLI pins server certificates in.
func DefaultKnownHostsPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "wisp", "known_hosts")
}
