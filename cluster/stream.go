package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/quic-go/quic-go"

	"github.com/wispbus/wisp/transport"
)

// ALPN is the QUIC application protocol between cluster nodes. Each
// stream starts with one byte saying what it carries: a Raft RPC
// connection (streamRaft) or one forwarded metadata request
// (streamControl, see rpc.go).
const ALPN = "wisp-raft/1"

const (
	streamRaft    byte = 1
	streamControl byte = 2
)

// QUIC error codes this package closes streams and connections with.
const (
	codeClosed quic.StreamErrorCode = 0x1
)

// peers dials other nodes: one cached QUIC connection per address, a new
// stream per Dial.
type peers struct {
	srv *transport.Server
	key []byte // Config.GossipKey: authenticates each stream (peerToken)

	mu     sync.Mutex // guards conns, closed
	conns  map[string]*peerConn
	closed bool
}

type peerConn struct {
	mu   sync.Mutex // held while dialing, so one dial per address at a time
	conn *quic.Conn
}

func newPeers(srv *transport.Server, key []byte) *peers {
	return &peers{srv: srv, key: key, conns: map[string]*peerConn{}}
}

// peerToken follows the kind byte of every stream when the cluster has a
// gossip key. It proves knowledge of the key on one connection:
// HMAC-SHA256(key, TLS exporter secret of the connection). Both ends
// derive the same exporter secret, a third party cannot, and a token is
// worthless on any other connection. Without a TLS CA, this is what keeps
// strangers out of Raft and forwarding (see transport.Server.PeerTLS).
func peerToken(key []byte, conn *quic.Conn) ([]byte, error) {
	tlsState := conn.ConnectionState().TLS
	ekm, err := tlsState.ExportKeyingMaterial("wisp peer auth", nil, 32)
	if err != nil {
		return nil, fmt.Errorf("cluster: peer token: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(ekm)
	return mac.Sum(nil), nil
}

// open opens a stream of the given kind to addr.
func (p *peers) open(ctx context.Context, addr string, kind byte) (*streamConn, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	pc := p.conns[addr]
	if pc == nil {
		pc = &peerConn{}
		p.conns[addr] = pc
	}
	p.mu.Unlock()

	pc.mu.Lock()
	conn := pc.conn
	if conn == nil || conn.Context().Err() != nil {
		var err error
		conn, err = p.srv.DialPeer(ctx, addr, ALPN)
		if err != nil {
			pc.mu.Unlock()
			return nil, err
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			pc.mu.Unlock()
			_ = conn.CloseWithError(0, "closed")
			return nil, ErrClosed
		}
		p.mu.Unlock()
		pc.conn = conn
	}
	pc.mu.Unlock()

	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: open stream to %s: %w", addr, err)
	}
	// The kind byte also makes the stream visible to the peer at once.
	if dl, ok := ctx.Deadline(); ok {
		_ = str.SetWriteDeadline(dl)
	}
	hdr := []byte{kind}
	if len(p.key) > 0 {
		tok, err := peerToken(p.key, conn)
		if err != nil {
			str.CancelRead(codeClosed)
			str.CancelWrite(codeClosed)
			return nil, err
		}
		hdr = append(hdr, tok...)
	}
	if _, err := str.Write(hdr); err != nil {
		str.CancelRead(codeClosed)
		str.CancelWrite(codeClosed)
		return nil, fmt.Errorf("cluster: open stream to %s: %w", addr, err)
	}
	_ = str.SetWriteDeadline(time.Time{})
	return &streamConn{str: str, local: conn.LocalAddr(), remote: conn.RemoteAddr()}, nil
}

// close closes every cached connection; later opens fail.
func (p *peers) close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[string]*peerConn{}
	p.mu.Unlock()
	for _, pc := range conns {
		pc.mu.Lock()
		if pc.conn != nil {
			_ = pc.conn.CloseWithError(0, "node closing")
		}
		pc.mu.Unlock()
	}
}

// streamConn is a QUIC stream as a net.Conn (what raft's NetworkTransport
// wants). Deadlines are the stream's.
type streamConn struct {
	str           *quic.Stream
	local, remote net.Addr
	closeOnce     sync.Once
}

func (c *streamConn) Read(b []byte) (int, error)         { return c.str.Read(b) }
func (c *streamConn) Write(b []byte) (int, error)        { return c.str.Write(b) }
func (c *streamConn) LocalAddr() net.Addr                { return c.local }
func (c *streamConn) RemoteAddr() net.Addr               { return c.remote }
func (c *streamConn) SetDeadline(t time.Time) error      { return c.str.SetDeadline(t) }
func (c *streamConn) SetReadDeadline(t time.Time) error  { return c.str.SetReadDeadline(t) }
func (c *streamConn) SetWriteDeadline(t time.Time) error { return c.str.SetWriteDeadline(t) }

// Close ends both directions: the write side with a FIN (after what was
// written), the read side by telling the peer to stop sending.
func (c *streamConn) Close() error {
	c.closeOnce.Do(func() {
		_ = c.str.Close()
		c.str.CancelRead(codeClosed)
	})
	return nil
}

// streamLayer is raft's StreamLayer over the node's QUIC endpoint.
type streamLayer struct {
	addr   raftAddr
	peers  *peers
	stop   <-chan struct{} // the node closing: aborts dials in progress
	accept chan net.Conn
	done   chan struct{}
	once   sync.Once
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// raftAddr is the advertised QUIC address as a net.Addr: raft takes its
// own server address from the listener.
type raftAddr string

func (a raftAddr) Network() string { return "udp" }
func (a raftAddr) String() string  { return string(a) }

func newStreamLayer(addr string, p *peers, stop <-chan struct{}) *streamLayer {
	return &streamLayer{addr: raftAddr(addr), peers: p, stop: stop, accept: make(chan net.Conn), done: make(chan struct{})}
}

// Dial implements raft.StreamLayer: a new stream on the cached connection.
// A node that is closing aborts its dials (a dead peer would otherwise
// hold raft's shutdown for a QUIC handshake timeout).
func (l *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-l.done:
			cancel()
		case <-l.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	c, err := l.peers.open(ctx, string(address), streamRaft)
	cancel()
	return c, err
}

// Accept implements net.Listener: the next inbound Raft stream.
func (l *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *streamLayer) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener.
func (l *streamLayer) Addr() net.Addr { return l.addr }

// hand passes an inbound Raft stream to Accept; false if the layer is
// closed or ctx ends first.
func (l *streamLayer) hand(ctx context.Context, c net.Conn) bool {
	select {
	case l.accept <- c:
		return true
	case <-l.done:
	case <-ctx.Done():
	}
	return false
}

// serveConn is the transport.ALPNHandler of ALPN: it reads each inbound
// stream's kind byte and hands Raft streams to the stream layer and
// control streams to the node. It owns one goroutine per stream being
// sorted or served, and returns when they are gone.
func (n *Node) serveConn(ctx context.Context, conn *quic.Conn) {
	// The node closing ends its inbound connections too (the transport
	// server may live on).
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(n.ctx, cancel)
	defer func() {
		stop()
		cancel()
	}()
	var want []byte
	if len(n.peers.key) > 0 {
		var err error
		if want, err = peerToken(n.peers.key, conn); err != nil {
			n.log.Warn("cluster: peer connection refused", "remote", conn.RemoteAddr().String(), "err", err)
			return
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		str, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := &streamConn{str: str, local: conn.LocalAddr(), remote: conn.RemoteAddr()}
			_ = str.SetReadDeadline(time.Now().Add(10 * time.Second))
			hdr := make([]byte, 1+len(want))
			if _, err := io.ReadFull(str, hdr); err != nil {
				str.CancelWrite(codeClosed)
				_ = sc.Close()
				return
			}
			if !hmac.Equal(hdr[1:], want) {
				n.log.Warn("cluster: peer stream without a valid gossip-key token refused; closing the connection",
					"remote", conn.RemoteAddr().String())
				_ = conn.CloseWithError(quic.ApplicationErrorCode(codeClosed), "unauthenticated peer")
				return
			}
			kind := hdr[:1]
			_ = str.SetReadDeadline(time.Time{})
			switch kind[0] {
			case streamRaft:
				if !n.layer.hand(ctx, sc) {
					str.CancelWrite(codeClosed)
					_ = sc.Close()
				}
			case streamControl:
				n.serveControl(ctx, sc)
			default:
				str.CancelWrite(codeClosed)
				_ = sc.Close()
			}
		}()
	}
}

// errNotController says this node cannot serve a controller request now;
// the caller retries (elsewhere).
var errNotController = errors.New("cluster: not the controller")
