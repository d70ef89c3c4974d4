package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/transport/wire"
)

// Peers is this node's client side of replication: it implements
// bus.ReplicaClient by sending wisp/1 requests to other nodes, one cached
// QUIC connection per node (dialed from the server's socket with DialPeer)
// and one stream per request.
type Peers struct {
	s       *Server
	resolve func(node int32) (addr string, ok bool)

	mu    sync.Mutex // guards conns
	conns map[int32]*peerConn
}

type peerConn struct {
	addr string
	conn *quic.Conn
}

// NewPeers returns a replica client that finds nodes' QUIC addresses with
// resolve (the cluster metadata).
func NewPeers(s *Server, resolve func(node int32) (addr string, ok bool)) *Peers {
	return &Peers{s: s, resolve: resolve, conns: map[int32]*peerConn{}}
}

var _ bus.ReplicaClient = (*Peers)(nil)

// Close closes every cached connection.
func (p *Peers) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, c := range p.conns {
		_ = c.conn.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeOK), "closing")
		delete(p.conns, id)
	}
}

// conn returns the cached connection to node, dialing it when there is none
// or its address changed.
func (p *Peers) conn(ctx context.Context, node int32) (*quic.Conn, error) {
	addr, ok := p.resolve(node)
	if !ok {
		return nil, fmt.Errorf("%w: node %d has no known address", kerr.BrokerNotAvailable, node)
	}
	p.mu.Lock()
	c := p.conns[node]
	if c != nil && (c.addr != addr || c.conn.Context().Err() != nil) {
		_ = c.conn.CloseWithError(0, "")
		delete(p.conns, node)
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		return c.conn, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := p.s.DialPeer(dctx, addr, wire.ALPN)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", kerr.BrokerNotAvailable, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.conns[node]; old != nil && old.conn.Context().Err() == nil {
		// Another request dialed at the same time; keep one.
		_ = conn.CloseWithError(0, "")
		return old.conn, nil
	}
	p.conns[node] = &peerConn{addr: addr, conn: conn}
	return conn, nil
}

// drop forgets a connection that failed.
func (p *Peers) drop(node int32, conn *quic.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[node]; c != nil && c.conn == conn {
		_ = conn.CloseWithError(0, "")
		delete(p.conns, node)
	}
}

// call sends one request to node and decodes its answer into resp.
func (p *Peers) call(ctx context.Context, node int32, timeout time.Duration, req, resp wire.Message) error {
	conn, err := p.conn(ctx, node)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		p.drop(node, conn)
		return fmt.Errorf("%w: node %d: %v", kerr.BrokerNotAvailable, node, err)
	}
	stop := context.AfterFunc(ctx, func() {
		str.CancelRead(quic.StreamErrorCode(wire.StreamCodeCanceled))
		str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeCanceled))
	})
	defer stop()
	if _, err := str.Write(wire.AppendFrame(nil, req)); err != nil {
		return p.streamErr(ctx, node, conn, err)
	}
	_ = str.Close()
	f, err := wire.ReadFrame(str, nil, wire.DefaultMaxFrame)
	if err != nil {
		return p.streamErr(ctx, node, conn, err)
	}
	if f.API == wire.APIError {
		var ef wire.ErrorFrame
		if err := wire.Decode(f, &ef); err != nil {
			return err
		}
		return wireErr(ef.Err)
	}
	if err := wire.Decode(f, resp); err != nil {
		return err
	}
	return nil
}

func (p *Peers) streamErr(ctx context.Context, node int32, conn *quic.Conn, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: node %d: %v", kerr.RequestTimedOut, node, ctx.Err())
	}
	if !errors.Is(err, io.EOF) {
		var se *quic.StreamError
		if !errors.As(err, &se) {
			p.drop(node, conn) // the connection, not just the stream, failed
		}
	}
	return fmt.Errorf("%w: node %d: %v", kerr.BrokerNotAvailable, node, err)
}

// wireErr turns a response's error back into the kerr error it came from.
func wireErr(e wire.Err) error {
	if !e.Failed() {
		return nil
	}
	if ke := kerr.ErrorForCode(e.Code); ke != nil {
		return fmt.Errorf("%w: %s", ke, e.Message)
	}
	return errors.New(e.Message)
}

// ReplicaFetch implements bus.ReplicaClient.
func (p *Peers) ReplicaFetch(ctx context.Context, leader int32, req bus.ReplicaFetchRequest) (bus.ReplicaFetchResponse, error) {
	var resp wire.ReplicaFetchResponse
	err := p.call(ctx, leader, req.MaxWait+5*time.Second, &wire.ReplicaFetchRequest{Topic: req.Topic, Partition: req.Partition,
		ReplicaID: req.ReplicaID, LeaderEpoch: req.LeaderEpoch, Offset: req.Offset, MaxBytes: req.MaxBytes,
		MaxWaitMs: int32(req.MaxWait / time.Millisecond)}, &resp)
	if err != nil {
		return bus.ReplicaFetchResponse{EndOffset: -1}, err
	}
	out := bus.ReplicaFetchResponse{Batches: resp.Batches, HighWatermark: resp.HighWatermark,
		LogStartOffset: resp.LogStartOffset, EndOffset: resp.EndOffset}
	return out, wireErr(resp.Err)
}

// LeaderEpochEnd implements bus.ReplicaClient.
func (p *Peers) LeaderEpochEnd(ctx context.Context, leader int32, topic string, partition, epoch int32) (int32, int64, error) {
	var resp wire.LeaderEpochEndResponse
	if err := p.call(ctx, leader, 5*time.Second, &wire.LeaderEpochEndRequest{Topic: topic, Partition: partition, Epoch: epoch}, &resp); err != nil {
		return -1, -1, err
	}
	return resp.Epoch, resp.EndOffset, wireErr(resp.Err)
}
