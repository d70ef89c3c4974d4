// Package transport is wisp's native protocol server: a QUIC listener
// (quic-go, TLS 1.3, ALPN wisp/1) that adapts the protocol of package
// transport/wire onto a *bus.Broker. docs/protocol.md describes the
// protocol byte by byte.
//
//	srv, err := transport.NewServer(transport.DefaultConfig(), broker)
//	if err != nil { ... }
//	if err := srv.Start(); err != nil { ... }
//	defer srv.Close(ctx)
//
// Every request travels on its own QUIC stream, except two long-lived
// kinds: a produce stream, where the client pipelines ProduceRequests and
// the server answers each partition's in order, and a fetch session, where
// the server pushes batches as the log grows (a long poll on
// bus.Broker.Watch, never a busy loop).
//
// Goroutines: the server owns one accept loop; the accept loop owns one
// goroutine per connection; a connection owns one goroutine per stream; a
// produce stream owns one goroutine per partition with queued requests.
// Each level waits for its children before it returns, and Close cancels
// the root context, closes the listener and every connection, and returns
// once the accept loop (and so everything below it) is gone.
package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/transport/wire"
)

// ErrServerClosed is returned by Start on a closed server.
var ErrServerClosed = errors.New("transport: server closed")

// Server is the QUIC frontend of one broker.
type Server struct {
	cfg    Config
	b      *bus.Broker
	log    *slog.Logger
	tls    *tls.Config
	quic   *quic.Config
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex // guards udp, tr, ln, conns, closed, alpn
	udp    *net.UDPConn
	tr     *quic.Transport
	ln     *quic.Listener
	conns  map[*quic.Conn]struct{}
	closed bool
	alpn   map[string]ALPNHandler // extra protocols, see alpn.go

	wg sync.WaitGroup // the accept loop and the connections

	clusterStatus atomic.Pointer[func() []byte] // SetClusterStatus
}

// NewServer validates cfg and prepares a server for b: it loads (or
// generates, once) the TLS certificate. It does not bind; call Start.
func NewServer(cfg Config, b *bus.Broker) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errors.New("transport: nil broker")
	}
	tc, err := serverTLS(cfg)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, b: b, log: logger, tls: tc, ctx: ctx, cancel: cancel,
		conns: map[*quic.Conn]struct{}{},
		quic: &quic.Config{
			MaxIncomingStreams:         cfg.MaxStreamsPerConn,
			MaxIncomingUniStreams:      -1,
			MaxIdleTimeout:             30 * time.Second,
			InitialStreamReceiveWindow: 1 << 20,
			MaxStreamReceiveWindow:     uint64(max(16<<20, cfg.MaxFrameBytes)),
			// One connection's streams together may buffer this much
			// unread data; with a produce stream and fetch sessions at
			// full speed that is the memory bound per client.
			InitialConnectionReceiveWindow: 2 << 20,
			MaxConnectionReceiveWindow:     uint64(max(32<<20, 2*cfg.MaxFrameBytes)),
		},
	}, nil
}

// Start binds the listener and starts serving in goroutines owned by the
// server.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	if s.ln != nil {
		return errors.New("transport: server already started")
	}
	// The server owns the socket and the quic.Transport, so that Close
	// releases the port before it returns (a restart can bind it again).
	ua, err := net.ResolveUDPAddr("udp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("transport: listen %s: %w", s.cfg.Addr, err)
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return fmt.Errorf("transport: listen %s: %w", s.cfg.Addr, err)
	}
	tr := &quic.Transport{Conn: udp, StatelessResetKey: s.statelessResetKey()}
	ln, err := tr.Listen(s.tls, s.quic)
	if err != nil {
		_ = tr.Close()
		_ = udp.Close()
		return fmt.Errorf("transport: listen %s: %w", s.cfg.Addr, err)
	}
	s.udp, s.tr, s.ln = udp, tr, ln
	s.wg.Add(1)
	go s.acceptLoop(ln)
	s.log.Info("quic listening", "addr", ln.Addr().String(), "alpn", wire.ALPN)
	return nil
}

// Addr is the bound address, or nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops accepting, closes every connection (clients see
// wire.ConnCodeShutdown) and returns once every goroutine of the server is
// gone, or with ctx.Err() if ctx ends first (the goroutines still exit).
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return s.wait(ctx)
	}
	s.closed = true
	s.cancel()
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		_ = c.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeShutdown), "server closing")
	}
	tr, udp := s.tr, s.udp
	s.mu.Unlock()
	werr := s.wait(ctx)
	if errors.Is(err, quic.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	if werr != nil {
		err = werr
	}
	if tr != nil {
		if terr := tr.Close(); err == nil {
			err = terr
		}
		if uerr := udp.Close(); err == nil && !errors.Is(uerr, net.ErrClosed) {
			err = uerr
		}
	}
	return err
}

func (s *Server) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) acceptLoop(ln *quic.Listener) {
	defer s.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		conn, err := ln.Accept(s.ctx)
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Error("quic accept failed; listener stopped", "err", err)
			}
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = conn.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeShutdown), "server closing")
			return
		}
		s.conns[conn] = struct{}{}
		s.mu.Unlock()
		conns.Add(1)
		go func() {
			defer conns.Done()
			s.dispatchConn(conn)
			s.mu.Lock()
			delete(s.conns, conn)
			s.mu.Unlock()
		}()
	}
}

// connState is what the handlers of one connection share.
type connState struct {
	s    *Server
	conn *quic.Conn
	ctx  context.Context // ends with the connection or the server
	host string          // client host for group members
}

func (s *Server) serveConn(conn *quic.Conn) {
	ctx, cancel := context.WithCancel(s.ctx)
	stop := context.AfterFunc(conn.Context(), cancel)
	defer func() {
		stop()
		cancel()
	}()
	host := conn.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	cs := &connState{s: s, conn: conn, ctx: ctx, host: "/" + host}
	var streams sync.WaitGroup
	defer streams.Wait()
	for {
		str, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		streams.Add(1)
		go func() {
			defer streams.Done()
			cs.serveStream(str)
		}()
	}
}
