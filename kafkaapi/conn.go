package kafkaapi

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wispbus/wisp/internal/growbuf"
	"github.com/wispbus/wisp/internal/metrics"
)

// maxInFlight bounds the requests of one connection that have been read
// but whose responses are not written yet. Kafka clients keep at most 5 in
// flight per connection; past this the reader stops reading (TCP
// backpressure) until the writer catches up.
const maxInFlight = 64

// maxPendingBytes bounds the bytes of responses a connection has computed
// but not written yet. maxInFlight alone does not bound memory: a client
// that pipelines 64 Fetch requests of 64 MB and never reads would make the
// server hold 4 GB. Past this the reader stops reading until the writer
// has written enough; one response may still exceed it on its own.
const maxPendingBytes = 64 << 20

// writeTimeout bounds how long one write to the client may make no
// progress (a client that stopped reading): past it the connection is
// closed, releasing the responses it holds. It applies to each chunk of
// writeChunk bytes, so a slow client that keeps reading is not cut off.
const (
	writeTimeout = 30 * time.Second
	writeChunk   = 1 << 20
)

// A conn is one client connection. Its reader goroutine reads, decodes and
// dispatches requests in order; its writer goroutine writes responses in
// the same order. Most handlers finish on the reader goroutine, so the
// effects of pipelined requests (two produces to one partition) happen in
// request order. Handlers that wait (a Fetch long poll, JoinGroup,
// SyncGroup) finish on a goroutine of their own, so the reader goes on
// reading and handling later requests meanwhile; their responses still
// leave in request order, because the writer takes calls from the queue in
// the order the reader put them there and waits for each to finish.
type conn struct {
	s      *Server
	nc     net.Conn
	log    *slog.Logger
	ctx    context.Context // cancelled when the connection or the server closes
	cancel context.CancelFunc
	queue  chan *call // calls in request order, read by the writer

	// pending is the size of the responses finished but not written
	// (see maxPendingBytes); the writer signals drained after writing.
	pending atomic.Int64
	drained chan struct{}

	host       string // advertised host and port, as seen on this connection
	port       int32
	clientHost string // "/ip", as Kafka reports members' hosts
}

// A call is one request in flight on a connection.
type call struct {
	c        *conn
	name     string // API name, for logs and metrics
	key      int16
	version  int16 // of the request, and of the response unless respVersion says otherwise
	corr     int32
	clientID string
	start    time.Time

	once  sync.Once     // the call finishes once: finish, finishNoResponse or abort
	done  chan struct{} // closed when the call has finished
	out   []byte        // the whole response frame; nil: no response
	close bool          // stop serving the connection after this call
}

func (s *Server) newConn(nc net.Conn, bound net.Addr) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	c := &conn{s: s, nc: nc, ctx: ctx, cancel: cancel, queue: make(chan *call, maxInFlight), drained: make(chan struct{}, 1)}
	c.log = s.log.With("remote", nc.RemoteAddr().String())
	c.host, c.port = s.advertised(nc.LocalAddr(), bound)
	c.clientHost = "/" + nc.RemoteAddr().String()
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.clientHost = "/" + ta.IP.String()
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		_ = tc.SetKeepAlive(true)
	}
	return c
}

func (c *conn) start() {
	c.log.Debug("kafka connection opened")
	c.s.goFunc(c.readLoop)
	c.s.goFunc(c.writeLoop)
}

// errProtocol marks a request that breaks the protocol: the connection
// is closed after the responses to earlier requests are written.
var errProtocol = errors.New("kafkaapi: protocol error")

func (c *conn) readLoop() {
	defer close(c.queue)
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var size [4]byte
	for {
		// Backpressure on memory: wait for the writer while too many
		// response bytes wait for a client that does not read them.
		for c.pending.Load() > maxPendingBytes {
			select {
			case <-c.drained:
			case <-c.ctx.Done():
				return
			}
		}
		if _, err := io.ReadFull(r, size[:]); err != nil {
			c.readFailed(err)
			return
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		// Checked before allocating: a hostile length must not become a
		// huge allocation.
		if n < 8 || int64(n) > int64(c.s.cfg.MaxRequestBytes) {
			c.log.Warn("kafka: bad request size; closing connection", "size", n, "max", c.s.cfg.MaxRequestBytes)
			c.cancel()
			return
		}
		// Grown as the bytes arrive, not allocated whole: a client
		// that announces 100 MiB and sends nothing must not cost
		// 100 MiB per connection.
		frame, err := growbuf.ReadFull(r, int(n))
		if err != nil {
			c.readFailed(err)
			return
		}
		if err := c.handleFrame(frame); err != nil {
			c.log.Warn("kafka: closing connection", "err", err)
			// Requests still waiting (long polls, joins) answer now
			// with what they have; the writer sends every answer
			// queued before it closes the connection.
			c.cancel()
			return
		}
	}
}

func (c *conn) readFailed(err error) {
	// The peer is gone (or the server is closing): nobody will read the
	// answers to requests still running, so stop them now.
	c.cancel()
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		c.log.Debug("kafka connection closed")
		return
	}
	c.log.Debug("kafka connection read failed", "err", err)
}

// handleFrame decodes one request frame, queues its call for the writer
// and dispatches it. An error closes the connection.
func (c *conn) handleFrame(frame []byte) error {
	h, body, err := parseHeader(frame)
	if err != nil {
		return err
	}
	cc := &call{c: c, key: h.key, version: h.version, corr: h.corr, clientID: h.clientID,
		start: time.Now(), done: make(chan struct{}), name: kmsg.NameForKey(h.key)}
	a := lookupAPI(h.key)
	if h.key == apiVersionsKey && (a == nil || h.version > a.max) {
		// Kafka answers an ApiVersions it cannot parse with a v0
		// response carrying UNSUPPORTED_VERSION and the versions it
		// does support, so that the client retries with one of them
		// (librdkafka starts with the newest it knows). The body is
		// not even read: its layout is unknown.
		c.enqueue(cc)
		cc.finishAt(0, unsupportedAPIVersions(), errUnsupportedVersion)
		return nil
	}
	if a == nil {
		if cc.name == "" {
			cc.name = "Unknown"
		}
		return fmt.Errorf("%w: unsupported API %s (key %d) v%d from client %q", errProtocol, cc.name, h.key, h.version, h.clientID)
	}
	if h.version < a.min || h.version > a.max {
		return fmt.Errorf("%w: %s v%d not in supported range v%d-v%d (client %q)", errProtocol, cc.name, h.version, a.min, a.max, h.clientID)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	if req.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			return fmt.Errorf("%w: %s v%d request header: %v", errProtocol, cc.name, h.version, err)
		}
	}
	if err := req.ReadFrom(body); err != nil {
		return fmt.Errorf("%w: %s v%d: malformed request: %v", errProtocol, cc.name, h.version, err)
	}
	c.enqueue(cc)
	c.dispatch(cc, a, req)
	if cc.isClosing() {
		return fmt.Errorf("%s v%d failed", cc.name, h.version)
	}
	return nil
}

func (c *conn) enqueue(cc *call) { c.queue <- cc }

// dispatch runs the handler, turning a panic (a bug) into a closed
// connection with a log line instead of a crashed broker.
func (c *conn) dispatch(cc *call, a *api, req kmsg.Request) {
	defer cc.recoverPanic()
	a.handle(cc, req)
}

func (cc *call) recoverPanic() {
	if r := recover(); r != nil {
		cc.c.log.Error("kafka: handler panicked; closing connection", "api", cc.name, "version", cc.version,
			"panic", r, "stack", string(debug.Stack()))
		if f := cc.c.s.onPanic; f != nil {
			f(r)
		}
		cc.abort()
	}
}

// goAsync finishes a call on a goroutine owned by the server, so that the
// reader can go on with later requests.
func (cc *call) goAsync(f func()) {
	cc.c.s.goFunc(func() {
		defer cc.recoverPanic()
		f()
	})
}

// finish encodes resp as the response to the call. err (nil for success)
// only feeds the metrics: error codes are in resp.
func (cc *call) finish(resp kmsg.Response, err error) { cc.finishAt(cc.version, resp, err) }

func (cc *call) finishAt(version int16, resp kmsg.Response, err error) {
	cc.once.Do(func() {
		resp.SetVersion(version)
		buf := make([]byte, 8, 256)
		binary.BigEndian.PutUint32(buf[4:], uint32(cc.corr))
		// Flexible responses use response header v1 (with tagged
		// fields), except ApiVersions, whose response header is always
		// v0 so that a client can read it before it knows what the
		// broker speaks.
		if resp.IsFlexible() && cc.key != apiVersionsKey {
			buf = append(buf, 0)
		}
		buf = resp.AppendTo(buf)
		binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
		cc.out = buf
		cc.c.pending.Add(int64(len(buf)))
		metrics.ObserveRequest("kafka", cc.name, cc.start, err)
		close(cc.done)
	})
}

// finishNoResponse completes a call that gets no answer (Produce acks=0).
func (cc *call) finishNoResponse(err error) {
	cc.once.Do(func() {
		metrics.ObserveRequest("kafka", cc.name, cc.start, err)
		close(cc.done)
	})
}

// abort completes the call without a response and closes the connection
// once earlier responses are written.
func (cc *call) abort() {
	cc.once.Do(func() {
		cc.close = true
		metrics.ObserveRequest("kafka", cc.name, cc.start, errProtocol)
		close(cc.done)
	})
}

func (cc *call) isClosing() bool {
	select {
	case <-cc.done:
		return cc.close
	default:
		return false
	}
}

func (c *conn) writeLoop() {
	defer func() {
		c.cancel()
		_ = c.nc.Close()
		c.s.forget(c)
	}()
	w := bufio.NewWriterSize(deadlineWriter{c.nc}, 64<<10)
	broken := false
	fail := func(err error) {
		if !broken {
			c.log.Debug("kafka connection write failed", "err", err)
		}
		broken = true
		// Unblock the reader; the queue is still drained so that it
		// never blocks on a full queue.
		_ = c.nc.Close()
		c.cancel()
	}
	for cc := range c.queue {
		select {
		case <-cc.done:
		default:
			// Nothing more is ready: send what is buffered before
			// waiting, or a client waiting on it would stall.
			if !broken && w.Buffered() > 0 {
				if err := w.Flush(); err != nil {
					fail(err)
				}
			}
			<-cc.done
		}
		if broken {
			continue
		}
		if cc.close {
			if err := w.Flush(); err != nil {
				fail(err)
			}
			fail(errProtocol)
			continue
		}
		if cc.out != nil {
			_, err := w.Write(cc.out)
			c.pending.Add(-int64(len(cc.out)))
			cc.out = nil
			select {
			case c.drained <- struct{}{}:
			default:
			}
			if err != nil {
				fail(err)
				continue
			}
		}
		// Nothing queued behind: send now. Otherwise the next response
		// may join this one in a single write.
		if len(c.queue) == 0 && w.Buffered() > 0 {
			if err := w.Flush(); err != nil {
				fail(err)
			}
		}
	}
	if !broken {
		_ = w.Flush()
	}
}

// deadlineWriter writes to a connection in chunks of writeChunk bytes,
// each with a fresh write deadline of writeTimeout: a write fails once the
// client has read nothing for writeTimeout, however large the response.
type deadlineWriter struct{ nc net.Conn }

func (d deadlineWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		k := min(len(p), writeChunk)
		_ = d.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		n, err := d.nc.Write(p[:k])
		written += n
		if err != nil {
			return written, err
		}
		p = p[k:]
	}
	return written, nil
}

// requestHeader is a decoded request header (v1, or v2 with tagged fields
// for flexible requests; v0 is only used by ControlledShutdown v0, which
// is not served).
type requestHeader struct {
	key, version int16
	corr         int32
	clientID     string
}

var errShortHeader = errors.New("truncated request header")

// parseHeader decodes the fixed part of a request header and returns what
// follows the client id. The header is not a kmsg message, so this is the
// one hand-written decoder of the package.
func parseHeader(frame []byte) (requestHeader, []byte, error) {
	if len(frame) < 10 {
		return requestHeader{}, nil, fmt.Errorf("%w: %w", errProtocol, errShortHeader)
	}
	h := requestHeader{
		key:     int16(binary.BigEndian.Uint16(frame[0:])),
		version: int16(binary.BigEndian.Uint16(frame[2:])),
		corr:    int32(binary.BigEndian.Uint32(frame[4:])),
	}
	n := int16(binary.BigEndian.Uint16(frame[8:]))
	rest := frame[10:]
	switch {
	case n == -1:
	case n < 0 || int(n) > len(rest):
		return h, nil, fmt.Errorf("%w: client id length %d", errProtocol, n)
	default:
		h.clientID = string(rest[:n])
		rest = rest[n:]
	}
	return h, rest, nil
}

// skipTags skips the tagged fields that end a v2 request header.
func skipTags(b []byte) ([]byte, error) {
	num, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, errShortHeader
	}
	b = b[n:]
	for i := uint64(0); i < num; i++ {
		if _, n = binary.Uvarint(b); n <= 0 {
			return nil, errShortHeader
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, errShortHeader
		}
		b = b[n+int(size):]
	}
	return b, nil
}
