package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wispbus/wisp/transport/wire"
)

// clientState is the live part of a Client.
//
// Lock order: producer.mu before clientState.mu; neither is held while
// dialing, writing or reading a stream.
type clientState struct {
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of the client and its producer

	mu      sync.Mutex // guards conn, dialing, closed
	conn    *quic.Conn
	dialing chan struct{} // closed when the dial in progress ends
	dialErr error
	closed  bool

	tlsByAddr map[string]*tls.Config
	quicConf  *quic.Config

	prod *producer
}

func newClient(ctx context.Context, cfg cfg) (*Client, error) {
	st := &clientState{tlsByAddr: map[string]*tls.Config{}}
	for _, a := range cfg.servers {
		tc, err := cfg.buildTLS(a)
		if err != nil {
			return nil, err
		}
		st.tlsByAddr[a] = tc
	}
	st.quicConf = &quic.Config{
		HandshakeIdleTimeout:       cfg.dialTimeout,
		MaxIdleTimeout:             30 * time.Second,
		KeepAlivePeriod:            10 * time.Second,
		MaxIncomingStreams:         -1, // the server never opens streams
		MaxIncomingUniStreams:      -1,
		InitialStreamReceiveWindow: 1 << 20,
		MaxStreamReceiveWindow:     uint64(max(16<<20, cfg.maxFrameBytes)),
		MaxConnectionReceiveWindow: uint64(max(32<<20, 2*cfg.maxFrameBytes)),
	}
	st.ctx, st.cancel = context.WithCancel(context.Background())
	c := &Client{cfg: cfg, clientState: st}
	if _, err := c.getConn(ctx); err != nil {
		st.cancel()
		return nil, err
	}
	st.prod = newProducer(c)
	return c, nil
}

// getConn returns the live connection, dialing when there is none. One dial
// runs at a time; concurrent callers wait for it.
func (c *Client) getConn(ctx context.Context) (*quic.Conn, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if c.conn != nil && c.conn.Context().Err() == nil {
			conn := c.conn
			c.mu.Unlock()
			return conn, nil
		}
		if c.dialing != nil {
			ch := c.dialing
			c.mu.Unlock()
			select {
			case <-ch:
				c.mu.Lock()
				err := c.dialErr
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
		c.dialing = ch
		c.mu.Unlock()
		conn, err := c.dial(ctx)
		c.mu.Lock()
		c.dialing = nil
		c.dialErr = err
		if err == nil {
			if c.closed {
				_ = conn.CloseWithError(0, "client closed")
				err = ErrClosed
			} else {
				c.conn = conn
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

func (c *Client) dial(ctx context.Context) (*quic.Conn, error) {
	var errs []error
	for _, addr := range c.cfg.servers {
		dctx, cancel := context.WithTimeout(ctx, c.cfg.dialTimeout)
		conn, err := quic.DialAddr(dctx, addr, c.tlsByAddr[addr], c.quicConf)
		cancel()
		if err == nil {
			c.cfg.logger.Debug("connected", "server", addr)
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return nil, fmt.Errorf("%w: %w", ErrConnection, errors.Join(errs...))
}

// dropConn forgets conn (if still current) and closes it, so the next
// getConn dials again. Used when a stream failed in a way that suggests the
// connection is gone.
func (c *Client) dropConn(conn *quic.Conn, why string) {
	c.mu.Lock()
	if c.conn == conn {
		c.conn = nil
	}
	c.mu.Unlock()
	_ = conn.CloseWithError(0, why)
}

// openStream opens a bidirectional stream on the live connection.
func (c *Client) openStream(ctx context.Context) (*quic.Stream, *quic.Conn, error) {
	conn, err := c.getConn(ctx)
	if err != nil {
		return nil, nil, err
	}
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		c.dropConn(conn, "open stream failed")
		return nil, nil, fmt.Errorf("%w: %w", ErrConnection, err)
	}
	return str, conn, nil
}

// roundTrip sends req on a new stream and decodes the answer into resp.
// Safe (read-only) requests are retried once on a fresh connection when
// the connection failed.
func (c *Client) roundTrip(ctx context.Context, req, resp wire.Message) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.requestTimeout)
		defer cancel()
	}
	err := c.roundTripOnce(ctx, req, resp)
	if err != nil && errors.Is(err, ErrConnection) && safeToRetry(req.API()) && ctx.Err() == nil {
		c.cfg.logger.Debug("retrying after connection failure", "api", req.API(), "err", err)
		err = c.roundTripOnce(ctx, req, resp)
	}
	return err
}

func safeToRetry(a wire.API) bool {
	switch a {
	case wire.APIMetadata, wire.APIClusterInfo, wire.APIListOffsets, wire.APIFetch, wire.APIOffsetFetch,
		wire.APIListGroups, wire.APIDescribeGroup, wire.APIGroupOffsets, wire.APIHeartbeat, wire.APIInitProducerID:
		return true
	}
	return false
}

func (c *Client) roundTripOnce(ctx context.Context, req, resp wire.Message) error {
	str, conn, err := c.openStream(ctx)
	if err != nil {
		return err
	}
	// Ending ctx abandons the stream: Read and Write return at once.
	stop := context.AfterFunc(ctx, func() {
		str.CancelRead(quic.StreamErrorCode(wire.StreamCodeCanceled))
		str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeCanceled))
	})
	defer stop()
	if _, err := str.Write(wire.AppendFrame(nil, req)); err != nil {
		return c.streamErr(ctx, conn, err)
	}
	_ = str.Close() // one request per stream: FIN after it
	f, err := wire.ReadFrame(str, nil, c.cfg.maxFrameBytes)
	if err != nil {
		return c.streamErr(ctx, conn, err)
	}
	str.CancelRead(quic.StreamErrorCode(wire.StreamCodeOK))
	return decodeAnswer(f, resp)
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
	conn := c.conn
	c.conn = nil
	c.mu.Unlock()
	c.cancel()
	if c.prod != nil {
		c.prod.shutdown()
	}
	if conn != nil {
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
