package kafkaapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
)

// ErrServerClosed is returned by Start on a closed server.
var ErrServerClosed = errors.New("kafkaapi: server closed")

// clusterID is what Metadata and DescribeCluster report. A single node has
// nothing to tell apart; clients only log it.
const clusterID = "wisp"

// Server is the Kafka wire-protocol frontend of one broker.
type Server struct {
	cfg    Config
	b      *bus.Broker
	log    *slog.Logger
	ctx    context.Context // cancelled by Close; every connection derives from it
	cancel context.CancelFunc

	mu     sync.Mutex // guards ln, conns, closed
	ln     net.Listener
	conns  map[*conn]struct{}
	closed bool

	idMu sync.Mutex          // guards ids
	ids  map[[16]byte]string // topic id -> name, for Fetch v13+ and DeleteTopics v6

	// onPanic, when set (by tests), is told of every handler panic.
	onPanic func(any)
	// waitCap, when set (by the fuzz test), bounds how long a request may
	// wait: fetch long polls, joins and syncs.
	waitCap time.Duration

	// wg counts every goroutine of the server: the accept loop, each
	// connection's reader and writer, and requests finishing
	// asynchronously (long-poll fetches, joins, syncs).
	wg sync.WaitGroup
}

// New validates cfg and prepares a server for b. It does not bind; call
// Start.
//
//	srv, err := kafkaapi.New(kafkaapi.DefaultConfig(), broker)
//	if err != nil { ... }
//	if err := srv.Start(); err != nil { ... }
//	defer srv.Close(ctx)
func New(cfg Config, b *bus.Broker) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errors.New("kafkaapi: nil broker")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, b: b, log: logger, ctx: ctx, cancel: cancel, conns: map[*conn]struct{}{}}, nil
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
		return errors.New("kafkaapi: server already started")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("kafkaapi: listen %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.acceptLoop(ln)
	s.log.Info("kafka listening", "addr", ln.Addr().String(), "advertised", s.cfg.AdvertisedAddr)
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

// Close stops accepting, closes every connection (requests in progress are
// abandoned: long polls and joins end, their responses are not sent) and
// returns once every goroutine of the server is gone, or with ctx.Err() if
// ctx ends first (the goroutines still exit).
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
		_ = c.nc.Close()
	}
	s.mu.Unlock()
	if werr := s.wait(ctx); werr != nil {
		return werr
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
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

func (s *Server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				s.log.Error("kafka listener closed; no longer accepting", "err", err)
				return
			}
			// Out of file descriptors and the like: back off as
			// net/http does instead of spinning or giving up.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("kafka accept failed; retrying", "err", err, "delay", delay)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		c := s.newConn(nc, ln.Addr())
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		c.start()
	}
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// goFunc runs f in a goroutine that Close waits for.
func (s *Server) goFunc(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// topicByID resolves a topic id (Fetch v13+, Metadata v12, DeleteTopics
// v6) to the topic. Ids are cached: looking them up means describing
// every topic, which a fetch per partition per poll cannot afford.
func (s *Server) topicByID(id [16]byte) (bus.TopicInfo, error) {
	s.idMu.Lock()
	name, ok := s.ids[id]
	s.idMu.Unlock()
	if ok {
		if info, err := s.b.Topic(name); err == nil && info.ID == id {
			return info, nil
		}
	}
	// Unknown, or deleted (and maybe created again under a new id):
	// describe every topic once and look again.
	var found *bus.TopicInfo
	ids := map[[16]byte]string{}
	for _, info := range s.b.Topics() {
		ids[info.ID] = info.Name
		if info.ID == id {
			found = &info
		}
	}
	s.idMu.Lock()
	s.ids = ids
	s.idMu.Unlock()
	if found == nil {
		return bus.TopicInfo{}, fmt.Errorf("%w: %x", kerr.UnknownTopicID, id)
	}
	return *found, nil
}

// waitContext is the context of a request that may wait (a join, a
// sync): the connection's, bounded by waitCap when set.
func (c *conn) waitContext() (context.Context, context.CancelFunc) {
	if c.s.waitCap > 0 {
		return context.WithTimeout(c.ctx, c.s.waitCap)
	}
	return context.WithCancel(c.ctx)
}

// advertised returns the host and port clients should use, as seen from a
// connection whose local address is local, accepted on bound.
func (s *Server) advertised(local, bound net.Addr) (string, int32) {
	addr := s.cfg.AdvertisedAddr
	if addr == "" && bound != nil {
		addr = bound.String()
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "127.0.0.1", 9092
	}
	if ip := net.ParseIP(host); s.cfg.AdvertisedAddr == "" && (host == "" || ip != nil && ip.IsUnspecified()) {
		// Bound to every interface: the address this client reached us
		// on is one it can reach again.
		if ta, ok := local.(*net.TCPAddr); ok {
			host = ta.IP.String()
		} else {
			host = "127.0.0.1"
		}
	}
	p, _ := strconv.Atoi(port)
	return host, int32(p)
}
