package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wispbus/wisp/transport/wire"
)

// Connections.
//
// The client keeps at most one QUIC connection per address, dialed lazily:
// the seed addresses of the Servers option, and the nodes the cluster
// metadata names (metadata.go maps node ids to addresses). Requests that
// any node can answer (metadata, topic admin, producer ids) go to "any"
// node: the one that answered last, else the first seed or known node that
// can be reached. Produce and fetch go to the partition's leader, group
// requests to the group's coordinator.
//
// Lock order: producer.mu, then clientState.mu, then metaCache.mu; none is
// held while dialing, writing or reading a stream.

// Client-side QUIC liveness: a node that vanishes without closing the
// connection (SIGKILL, a cable pulled) is noticed after clientIdleTimeout
// without packets, so its in-flight requests are retried on the new
// leader instead of waiting for the server's 30 s idle timeout. The
// keep-alives keep a healthy idle connection open well within it.
const (
	clientIdleTimeout = 8 * time.Second
	clientKeepAlive   = 2 * time.Second
)

// clientState is the live part of a Client.
type clientState struct {
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of the client and its producer

	mu        sync.Mutex         // guards the fields below and every broker's fields
	brokers   map[string]*broker // by address
	anyAddr   string             // where requests for any node went last
	avoidAddr string             // a node that did not answer in time: any other is preferred
	coord     map[string]string  // consumer group -> coordinator address
	closed    bool
	tlsByAddr map[string]*tls.Config

	quicConf *quic.Config
	meta     metaCache

	prod *producer
}

// broker is one address's connection; guarded by clientState.mu.
type broker struct {
	addr    string
	conn    *quic.Conn
	dialing chan struct{} // closed when the dial in progress ends
	dialErr error
}

func newClient(ctx context.Context, cfg cfg) (*Client, error) {
	st := &clientState{tlsByAddr: map[string]*tls.Config{}, brokers: map[string]*broker{}, coord: map[string]string{}}
	for _, a := range cfg.servers {
		tc, err := cfg.buildTLS(a)
		if err != nil {
			return nil, err
		}
		st.tlsByAddr[a] = tc
	}
	st.quicConf = &quic.Config{
		HandshakeIdleTimeout:       cfg.dialTimeout,
		MaxIdleTimeout:             clientIdleTimeout,
		KeepAlivePeriod:            clientKeepAlive,
		MaxIncomingStreams:         -1, // the server never opens streams
		MaxIncomingUniStreams:      -1,
		InitialStreamReceiveWindow: 1 << 20,
		MaxStreamReceiveWindow:     uint64(max(16<<20, cfg.maxFrameBytes)),
		MaxConnectionReceiveWindow: uint64(max(32<<20, 2*cfg.maxFrameBytes)),
	}
	st.meta.init()
	st.ctx, st.cancel = context.WithCancel(context.Background())
	c := &Client{cfg: cfg, clientState: st}
	if _, err := c.getConn(ctx); err != nil {
		st.cancel()
		return nil, err
	}
	st.prod = newProducer(c)
	c.goFunc(c.metaLoop)
	return c, nil
}

// route says where a request goes: any node (node < 0 and addr ""), a
// node by id, or an address.
type route struct {
	node int32
	addr string
}

var anyNode = route{node: -1}

func nodeRoute(id int32) route { return route{node: id} }

func (r route) String() string {
	switch {
	case r.addr != "":
		return r.addr
	case r.node >= 0:
		return fmt.Sprintf("node %d", r.node)
	}
	return "any node"
}

// getConn returns a live connection to any node, dialing when there is
// none.
func (c *Client) getConn(ctx context.Context) (*quic.Conn, error) {
	conn, _, err := c.connFor(ctx, anyNode)
	return conn, err
}

// connFor returns a live connection for r and its address.
func (c *Client) connFor(ctx context.Context, r route) (*quic.Conn, string, error) {
	if r.addr != "" {
		conn, err := c.connTo(ctx, r.addr)
		return conn, r.addr, err
	}
	if r.node >= 0 {
		addr, ok := c.meta.nodeAddr(r.node)
		if !ok {
			return nil, "", fmt.Errorf("%w: no address known for node %d", ErrConnection, r.node)
		}
		conn, err := c.connTo(ctx, addr)
		return conn, addr, err
	}
	// Any node: a live connection, preferably the last one used.
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, "", ErrClosed
	}
	if b := c.brokers[c.anyAddr]; b != nil && b.live() {
		conn, addr := b.conn, b.addr
		c.mu.Unlock()
		return conn, addr, nil
	}
	var fallback *broker
	for addr, b := range c.brokers {
		if !b.live() {
			continue
		}
		if addr == c.avoidAddr {
			fallback = b
			continue
		}
		c.anyAddr = addr
		conn := b.conn
		c.mu.Unlock()
		return conn, addr, nil
	}
	avoid := c.avoidAddr
	c.mu.Unlock()
	// None: dial the seeds in order, then the nodes the metadata knows.
	cands := append([]string(nil), c.cfg.servers...)
	for _, a := range c.meta.nodeAddrs() {
		if !contains(cands, a) {
			cands = append(cands, a)
		}
	}
	var errs []error
	for _, addr := range cands {
		if addr == avoid && fallback != nil {
			continue
		}
		conn, err := c.connTo(ctx, addr)
		if err == nil {
			c.mu.Lock()
			c.anyAddr = addr
			c.mu.Unlock()
			return conn, addr, nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return nil, "", err
		}
		errs = append(errs, err)
	}
	if fallback != nil {
		c.mu.Lock()
		conn, live := fallback.conn, fallback.live()
		c.mu.Unlock()
		if live {
			return conn, avoid, nil
		}
	}
	return nil, "", fmt.Errorf("%w: %w", ErrConnection, errors.Join(errs...))
}

// avoidForAny makes requests for any node prefer another node than addr,
// which did not answer in time, until another one fails too.
func (c *Client) avoidForAny(addr string) {
	c.mu.Lock()
	c.avoidAddr = addr
	if c.anyAddr == addr {
		c.anyAddr = ""
	}
	c.mu.Unlock()
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (b *broker) live() bool { return b.conn != nil && b.conn.Context().Err() == nil }

// connTo returns the live connection to addr, dialing when there is none.
// One dial per address runs at a time; concurrent callers wait for it.
func (c *Client) connTo(ctx context.Context, addr string) (*quic.Conn, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		b := c.brokers[addr]
		if b == nil {
			b = &broker{addr: addr}
			c.brokers[addr] = b
		}
		if b.live() {
			conn := b.conn
			c.mu.Unlock()
			return conn, nil
		}
		if b.dialing != nil {
			ch := b.dialing
			c.mu.Unlock()
			select {
			case <-ch:
				c.mu.Lock()
				err := b.dialErr
				c.mu.Unlock()
				if err != nil {
					return nil, err
				}
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ch := make(chan struct{})
		b.dialing = ch
		tc, tlsErr := c.tlsForLocked(addr)
		c.mu.Unlock()
		var conn *quic.Conn
		err := tlsErr
		if err == nil {
			conn, err = c.dial(ctx, addr, tc)
		}
		c.mu.Lock()
		b.dialing = nil
		b.dialErr = err
		if err == nil {
			if c.closed {
				_ = conn.CloseWithError(0, "client closed")
				err = ErrClosed
			} else {
				b.conn = conn
			}
		}
		close(ch)
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return conn, nil
	}
}

// tlsForLocked returns the TLS configuration for addr, built on first use
// with the same trust settings as the seeds (the host verified is addr's).
// c.mu is held.
func (c *Client) tlsForLocked(addr string) (*tls.Config, error) {
	if tc := c.tlsByAddr[addr]; tc != nil {
		return tc, nil
	}
	tc, err := c.cfg.buildTLS(addr)
	if err != nil {
		return nil, err
	}
	c.tlsByAddr[addr] = tc
	return tc, nil
}

func (c *Client) dial(ctx context.Context, addr string, tc *tls.Config) (*quic.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.dialTimeout)
	conn, err := quic.DialAddr(dctx, addr, tc, c.quicConf)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrConnection, addr, err)
	}
	c.cfg.logger.Debug("connected", "server", addr)
	return conn, nil
}

// dropConn forgets conn (if still current) and closes it, so the next
// request dials again. Used when a stream failed in a way that suggests the
// connection is gone.
func (c *Client) dropConn(conn *quic.Conn, why string) {
	c.mu.Lock()
	for _, b := range c.brokers {
		if b.conn == conn {
			b.conn = nil
		}
	}
	c.mu.Unlock()
	_ = conn.CloseWithError(0, why)
}

// openStream opens a bidirectional stream to any node.
func (c *Client) openStream(ctx context.Context) (*quic.Stream, *quic.Conn, error) {
	str, conn, _, err := c.openStreamTo(ctx, anyNode)
	return str, conn, err
}

// openStreamTo opens a bidirectional stream as r says.
func (c *Client) openStreamTo(ctx context.Context, r route) (*quic.Stream, *quic.Conn, string, error) {
	conn, addr, err := c.connFor(ctx, r)
	if err != nil {
		return nil, nil, "", err
	}
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, "", ctx.Err()
		}
		c.dropConn(conn, "open stream failed")
		return nil, nil, "", fmt.Errorf("%w: %w", ErrConnection, err)
	}
	return str, conn, addr, nil
}

// roundTrip sends req to any node on a new stream and decodes the answer
// into resp. Safe (read-only) requests are retried once on a fresh
// connection (to another node when this one is gone) when the connection
// failed.
// Group requests go to the group's coordinator instead (coordinator.go).
func (c *Client) roundTrip(ctx context.Context, req, resp wire.Message) error {
	if g, ok := wire.GroupOf(req); ok {
		return c.groupRoundTrip(ctx, g, req, resp)
	}
	_, err := c.exchange(ctx, anyNode, req, resp)
	return err
}

// exchange is roundTrip as r says; it returns the address that answered.
func (c *Client) exchange(ctx context.Context, r route, req, resp wire.Message) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.requestTimeout)
		defer cancel()
	}
	addr, err := c.roundTripOnce(ctx, r, req, resp)
	if err != nil && errors.Is(err, ErrConnection) && safeToRetry(req.API()) && ctx.Err() == nil {
		c.cfg.logger.Debug("retrying after connection failure", "api", req.API(), "to", r, "err", err)
		addr, err = c.roundTripOnce(ctx, r, req, resp)
	}
	return addr, err
}

func safeToRetry(a wire.API) bool {
	switch a {
	case wire.APIMetadata, wire.APIClusterInfo, wire.APIListOffsets, wire.APIFetch, wire.APIOffsetFetch,
		wire.APIListGroups, wire.APIDescribeGroup, wire.APIGroupOffsets, wire.APIHeartbeat, wire.APIInitProducerID,
		wire.APIFindCoordinator:
		return true
	}
	return false
}

func (c *Client) roundTripOnce(ctx context.Context, r route, req, resp wire.Message) (string, error) {
	str, conn, addr, err := c.openStreamTo(ctx, r)
	if err != nil {
		return "", err
	}
	// Ending ctx abandons the stream: Read and Write return at once.
	stop := context.AfterFunc(ctx, func() {
		str.CancelRead(quic.StreamErrorCode(wire.StreamCodeCanceled))
		str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeCanceled))
	})
	defer stop()
	if _, err := str.Write(wire.AppendFrame(nil, req)); err != nil {
		return addr, c.streamErr(ctx, conn, err)
	}
	_ = str.Close() // one request per stream: FIN after it
	f, err := wire.ReadFrame(str, nil, c.cfg.maxFrameBytes)
	if err != nil {
		return addr, c.streamErr(ctx, conn, err)
	}
	str.CancelRead(quic.StreamErrorCode(wire.StreamCodeOK))
	return addr, decodeAnswer(f, resp)
}

// decodeAnswer decodes a response frame, turning an ErrorFrame into an
// error.
func decodeAnswer(f wire.Frame, resp wire.Message) error {
	if f.API == wire.APIError {
		var ef wire.ErrorFrame
		if err := wire.Decode(f, &ef); err != nil {
			return fmt.Errorf("%w: %v", ErrProtocol, err)
		}
		return fmt.Errorf("%w: server ended the stream (code %d): %w", ErrProtocol, ef.StreamCode,
			brokerError(ef.Code, ef.Message))
	}
	if err := wire.Decode(f, resp); err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return nil
}

// streamErr classifies a stream failure.
func (c *Client) streamErr(ctx context.Context, conn *quic.Conn, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: stream ended early", ErrProtocol)
	}
	if errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrMalformed) {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	var se *quic.StreamError
	if errors.As(err, &se) && conn.Context().Err() == nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	c.dropConn(conn, "stream failed")
	return fmt.Errorf("%w: %w", ErrConnection, err)
}

// checkErr turns a response's error part into an error.
func checkErr(e wire.Err) error { return brokerError(e.Code, e.Message) }

func (c *Client) close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	if c.prod != nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.requestTimeout)
		_ = c.prod.flush(ctx)
		cancel()
	}
	c.mu.Lock()
	c.closed = true
	var conns []*quic.Conn
	for _, b := range c.brokers {
		if b.conn != nil {
			conns = append(conns, b.conn)
			b.conn = nil
		}
	}
	c.mu.Unlock()
	c.cancel()
	if c.prod != nil {
		c.prod.shutdown()
	}
	for _, conn := range conns {
		_ = conn.CloseWithError(0, "client closed")
	}
	c.wg.Wait()
	return nil
}

// goFunc runs fn in a goroutine owned by the client (waited for by Close).
func (c *Client) goFunc(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// reachableAddr returns the address to dial for a node that advertises
// advertised, learned through a connection to via: a wildcard host
// (0.0.0.0, ::) is replaced by via's host.
func reachableAddr(advertised, via string) string {
	host, port, err := net.SplitHostPort(advertised)
	if err != nil {
		return advertised
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if vh, _, err := net.SplitHostPort(via); err == nil {
			return net.JoinHostPort(vh, port)
		}
	}
	return advertised
}
