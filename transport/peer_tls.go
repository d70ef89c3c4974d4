package transport

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/quic-go/quic-go"
)

// PeerTLS returns the client TLS configuration for a node-to-node
// connection negotiating proto to the node at addr (host:port):
//
//   - the node presents its own server certificate as client certificate,
//     so a peer with Config.TLSCA set can verify it;
//   - with Config.TLSCA set the peer's certificate is verified against
//     that CA (for the host of addr, so node certificates need it as a SAN);
//   - without TLSCA the peer's certificate is NOT verified: nodes use
//     self-signed certificates nobody else knows. Traffic is encrypted but
//     an active attacker on the network could impersonate a node. This is
//     a known gap; set a CA in production.
func (s *Server) PeerTLS(addr, proto string) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("transport: peer address %q: %w", addr, err)
	}
	tc := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{proto},
		Certificates: s.tls.Certificates,
		ServerName:   host,
	}
	if s.cfg.TLSCA == "" {
		tc.InsecureSkipVerify = true
		return tc, nil
	}
	pem, err := os.ReadFile(s.cfg.TLSCA)
	if err != nil {
		return nil, fmt.Errorf("transport: TLSCA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("transport: TLSCA %s: no PEM certificate", s.cfg.TLSCA)
	}
	tc.RootCAs = pool
	return tc, nil
}

// DialPeer opens a QUIC connection negotiating proto to another node's QUIC
// address, from this server's own UDP socket (one port per node carries all
// QUIC), with the TLS of PeerTLS. The server must be started. The caller
// owns the connection and closes it; Close of the server closes the socket
// under it.
func (s *Server) DialPeer(ctx context.Context, addr, proto string) (*quic.Conn, error) {
	s.mu.Lock()
	tr, closed := s.tr, s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrServerClosed
	}
	if tr == nil {
		return nil, errors.New("transport: DialPeer before Start")
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: peer %s: %w", addr, err)
	}
	tc, err := s.PeerTLS(addr, proto)
	if err != nil {
		return nil, err
	}
	conn, err := tr.Dial(ctx, ua, tc, &quic.Config{
		HandshakeIdleTimeout: 3 * time.Second,
		// Keep-alives hold a cached peer connection open while idle; a peer
		// that stopped answering is noticed within MaxIdleTimeout (a
		// restarted one at once, by stateless reset).
		MaxIdleTimeout:             10 * time.Second,
		KeepAlivePeriod:            2 * time.Second,
		InitialStreamReceiveWindow: 1 << 20,
		MaxStreamReceiveWindow:     16 << 20,
		MaxConnectionReceiveWindow: 32 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("transport: dial peer %s (%s): %w", addr, proto, err)
	}
	return conn, nil
}

// statelessResetKey derives the QUIC stateless reset key from the node's
// private key, so that it is the same across restarts: a restarted node
// then resets the connections its previous incarnation had (peers and
// clients notice at their next packet instead of after their idle
// timeout). Nil (no resets) if the key cannot be encoded.
func (s *Server) statelessResetKey() *quic.StatelessResetKey {
	if len(s.tls.Certificates) == 0 {
		return nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(s.tls.Certificates[0].PrivateKey)
	if err != nil {
		return nil
	}
	mac := hmac.New(sha256.New, der)
	mac.Write([]byte("wisp quic stateless reset key"))
	var k quic.StatelessResetKey
	copy(k[:], mac.Sum(nil))
	return &k
}
