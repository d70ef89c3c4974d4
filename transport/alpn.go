package transport

import (
	"context"
	"errors"
	"fmt"

	"github.com/quic-go/quic-go"

	"github.com/wispbus/wisp/transport/wire"
)

// ALPNHandler serves one QUIC connection that negotiated a protocol
// registered with HandleALPN. It runs in a goroutine owned by the server
// (Close waits for it), must return once ctx ends (the server is closing or
// the connection is gone), and owns every goroutine it starts. The server
// closes conn after the handler returns.
type ALPNHandler func(ctx context.Context, conn *quic.Conn)

// HandleALPN makes the server accept connections negotiating proto (a TLS
// ALPN protocol id other than wire.ALPN) and hand them to h. It must be
// called before Start: the protocol is added to the TLS configuration the
// listener is built with. Node-to-node protocols use it, e.g. the Raft
// transport of package cluster ("wisp-raft/1") on the node's one UDP port.
//
// When Config.TLSCA is set, a connection for a registered protocol must
// present a client certificate the CA verifies (peers are other nodes, see
// DialPeer); without TLSCA peers are not authenticated by TLS.
func (s *Server) HandleALPN(proto string, h ALPNHandler) error {
	if proto == "" || proto == wire.ALPN {
		return fmt.Errorf("transport: HandleALPN: invalid protocol %q", proto)
	}
	if h == nil {
		return errors.New("transport: HandleALPN: nil handler")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	if s.ln != nil {
		return fmt.Errorf("transport: HandleALPN(%q) after Start", proto)
	}
	if _, ok := s.alpn[proto]; ok {
		return fmt.Errorf("transport: HandleALPN: %q already registered", proto)
	}
	if s.alpn == nil {
		s.alpn = map[string]ALPNHandler{}
	}
	s.alpn[proto] = h
	s.tls.NextProtos = append(s.tls.NextProtos, proto)
	return nil
}

// dispatchConn serves conn with the handler of its negotiated protocol:
// the native protocol, or one registered with HandleALPN.
func (s *Server) dispatchConn(conn *quic.Conn) {
	state := conn.ConnectionState().TLS
	proto := state.NegotiatedProtocol
	if proto == "" || proto == wire.ALPN {
		s.serveConn(conn)
		return
	}
	s.mu.Lock()
	h := s.alpn[proto]
	s.mu.Unlock()
	if h == nil {
		// TLS only negotiates registered protocols; this is defensive.
		_ = conn.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeOK), "unknown protocol")
		return
	}
	if s.cfg.TLSCA != "" && len(state.VerifiedChains) == 0 {
		s.log.Warn("peer connection without a verified certificate refused", "alpn", proto,
			"remote", conn.RemoteAddr().String())
		_ = conn.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeOK), "peer certificate required")
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	stop := context.AfterFunc(conn.Context(), cancel)
	defer func() {
		stop()
		cancel()
		_ = conn.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeOK), "")
	}()
	h(ctx, conn)
}
