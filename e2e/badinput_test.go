package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/internal/testnode"
	"github.com/wispbus/wisp/transport/wire"
)

// The BadInput tests send malformed and hostile input over real sockets to
// a real `wisp serve` and check, after each attack, that
//   - the bad connection or stream got a clear error or was closed,
//   - the node still serves a normal produce and consume from another
//     client,
//   - its memory (RSS from /proc) grew by less than a generous bound, and
//     its goroutines (go_goroutines of /metrics) came back to the baseline
//     once the bad connections were gone.

// Bounds: generous, so that they hold on a loaded machine, but far below
// what the attacks would cost without the limits they test (gigabytes).
const (
	rssSlack       = 256 << 20
	goroutineSlack = 25
)

// metric reads a gauge of the node's /metrics.
func metric(t testing.TB, n *testnode.Node, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.HTTP + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			g, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s %q: %v", name, v, err)
			}
			return g
		}
	}
	t.Fatalf("no %s in /metrics (%v)", name, sc.Err())
	return 0
}

// goroutines reads go_goroutines from the node's /metrics.
func goroutines(t testing.TB, n *testnode.Node) int {
	t.Helper()
	return int(metric(t, n, "go_goroutines"))
}

func rss(t testing.TB, n *testnode.Node) int64 {
	t.Helper()
	v, err := n.RSS()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// baseline is the node's usage before an attack.
type baseline struct {
	rss        int64
	heap       int64 // Go heap in use: it counts allocations the OS has not backed with pages yet
	goroutines int
}

func measure(t testing.TB, n *testnode.Node) baseline {
	t.Helper()
	return baseline{rss: rss(t, n), heap: int64(metric(t, n, "go_memstats_heap_inuse_bytes")), goroutines: goroutines(t, n)}
}

// checkRSS fails if the node's RSS or Go heap grew by more than rssSlack
// since b. The heap matters as much as RSS: a huge make([]byte) is not
// resident until written, but it is committed to (and the next GC cycle
// or a reuse of the span touches it).
func (b baseline) checkRSS(t testing.TB, n *testnode.Node, what string) {
	t.Helper()
	now := measure(t, n)
	t.Logf("%s: RSS %d MiB -> %d MiB, heap %d MiB -> %d MiB", what, b.rss>>20, now.rss>>20, b.heap>>20, now.heap>>20)
	if now.rss-b.rss > rssSlack {
		t.Fatalf("%s: RSS grew by %d MiB (bound %d MiB)", what, (now.rss-b.rss)>>20, rssSlack>>20)
	}
	if now.heap-b.heap > rssSlack {
		t.Fatalf("%s: Go heap grew by %d MiB (bound %d MiB)", what, (now.heap-b.heap)>>20, rssSlack>>20)
	}
}

// checkGoroutines waits until the node's goroutines are back near b.
func (b baseline) checkGoroutines(t testing.TB, n *testnode.Node, what string, d time.Duration) {
	t.Helper()
	checkFor(t, d, func() error {
		if g := goroutines(t, n); g > b.goroutines+goroutineSlack {
			return fmt.Errorf("%s: %d goroutines, baseline %d", what, g, b.goroutines)
		}
		return nil
	})
}

var serveSeq atomic.Int64

// assertServes produces a record with a new client and reads it back.
func assertServes(t testing.TB, n *testnode.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(ctx, client.Servers(n.QUIC), client.RequestTimeout(10*time.Second))
	if err != nil {
		t.Fatalf("node does not accept a client: %v", err)
	}
	defer c.Close()
	topic := fmt.Sprintf("alive-%d", serveSeq.Add(1))
	if _, err := c.CreateTopic(ctx, client.TopicSpec{Name: topic, Partitions: 1}); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	value := []byte("still serving " + topic)
	if err := c.ProduceSync(ctx, &client.Record{Topic: topic, Value: value}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	got := pollAll(t, c, topic, 20*time.Second, func(r []*client.Record) bool { return len(r) > 0 })
	if !bytes.Equal(got[0].Value, value) {
		t.Fatalf("read back %q, wrote %q", got[0].Value, value)
	}
}

// warmUp serves once, so that the baseline includes what the first
// produce and consume set up for good (pools, metrics, ...).
func warmUp(t *testing.T, n *testnode.Node) baseline {
	t.Helper()
	assertServes(t, n)
	time.Sleep(200 * time.Millisecond)
	return measure(t, n)
}

// --- QUIC ---

func dialQUIC(ctx context.Context, n *testnode.Node, alpn string) (*quic.Conn, error) {
	tc := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpn}} // the test node's self-signed certificate
	return quic.DialAddr(ctx, n.QUIC, tc, &quic.Config{MaxIdleTimeout: time.Minute, KeepAlivePeriod: 5 * time.Second})
}

func mustDialQUIC(t testing.TB, n *testnode.Node) *quic.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := dialQUIC(ctx, n, wire.ALPN)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.CloseWithError(0, "") })
	return conn
}

// frameBytes builds a frame by hand: length, version, api, payload.
func frameBytes(length uint32, version uint8, api uint16, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, length)
	b = append(b, version)
	b = binary.BigEndian.AppendUint16(b, api)
	return append(b, payload...)
}

// exchange sends raw bytes on a new stream (closing its send side when
// fin) and returns the first frame the server answers, or the stream's
// error.
func exchange(t testing.TB, conn *quic.Conn, raw []byte, fin bool) (wire.Frame, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	defer str.CancelRead(0)
	_ = str.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := str.Write(raw); err != nil {
		return wire.Frame{}, err
	}
	if fin {
		_ = str.Close()
	}
	return wire.ReadFrame(str, nil, wire.DefaultMaxFrame)
}

// errorFrame decodes f as the server's ErrorFrame.
func errorFrame(t testing.TB, f wire.Frame, err error) *wire.ErrorFrame {
	t.Helper()
	if err != nil {
		t.Fatalf("want an error frame, got %v", err)
	}
	if f.API != wire.APIError {
		t.Fatalf("want an error frame, got a %s frame", f.API)
	}
	var ef wire.ErrorFrame
	if err := wire.Decode(f, &ef); err != nil {
		t.Fatalf("error frame does not decode: %v", err)
	}
	return &ef
}

// metadataOK checks that conn still answers a valid request.
func metadataOK(t testing.TB, conn *quic.Conn) {
	t.Helper()
	f, err := exchange(t, conn, wire.AppendFrame(nil, &wire.MetadataRequest{}), true)
	if err != nil || f.API != wire.APIMetadata {
		t.Fatalf("valid Metadata after bad streams: frame %s, %v", f.API, err)
	}
}

func TestBadInputQUICFrames(t *testing.T) {
	n := testnode.Start(t)
	base := warmUp(t, n)
	conn := mustDialQUIC(t, n)
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	meta := wire.AppendFrame(nil, &wire.MetadataRequest{Topics: []string{"a"}})
	for _, tc := range []struct {
		name   string
		raw    []byte
		code   int16  // the ErrorFrame's kerr code
		stream uint64 // its stream code
		msg    string // in its message
	}{
		{"truncated frame", frameBytes(100, wire.Version, uint16(wire.APIMetadata), []byte{0, 0, 0}), kerr.InvalidRequest.Code, wire.StreamCodeMalformed, "unexpected EOF"},
		{"truncated header", []byte{0, 0, 0, 9, 1}, kerr.InvalidRequest.Code, wire.StreamCodeMalformed, "unexpected EOF"},
		{"huge length", frameBytes(0xFFFFFFFF, wire.Version, uint16(wire.APIMetadata), nil), kerr.MessageTooLarge.Code, wire.StreamCodeTooLarge, "frame too large"},
		{"length under header", frameBytes(2, 0, 0, nil), kerr.InvalidRequest.Code, wire.StreamCodeMalformed, "malformed"},
		{"unknown api", frameBytes(3, wire.Version, 0x7777, nil), kerr.UnsupportedVersion.Code, wire.StreamCodeUnsupported, "unknown API"},
		{"push api as request", frameBytes(3, wire.Version, uint16(wire.APIFetchPush), nil), kerr.UnsupportedVersion.Code, wire.StreamCodeUnsupported, "unknown API"},
		{"wrong version", frameBytes(uint32(len(meta)-4), 9, uint16(wire.APIMetadata), meta[wire.FrameHeaderSize:]), kerr.UnsupportedVersion.Code, wire.StreamCodeUnsupported, "version"},
		{"malformed payload", frameBytes(3+4, wire.Version, uint16(wire.APIMetadata), []byte{0x7f, 0xff, 0xff, 0xff}), kerr.InvalidRequest.Code, wire.StreamCodeMalformed, "malformed"},
		{"trailing bytes", frameBytes(uint32(len(meta)-4+2), wire.Version, uint16(wire.APIMetadata), append(append([]byte{}, meta[wire.FrameHeaderSize:]...), 1, 2)), kerr.InvalidRequest.Code, wire.StreamCodeMalformed, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := exchange(t, conn, tc.raw, true)
			ef := errorFrame(t, f, err)
			t.Logf("error frame: code %d, stream code %d: %q", ef.Code, ef.StreamCode, ef.Message)
			if ef.Code != tc.code || ef.StreamCode != tc.stream || !strings.Contains(ef.Message, tc.msg) {
				t.Fatalf("error frame %d/%d %q, want %d/%d with %q", ef.Code, ef.StreamCode, ef.Message, tc.code, tc.stream, tc.msg)
			}
			// Only the stream failed: the connection serves on.
			metadataOK(t, conn)
		})
	}
	t.Run("random garbage", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			k := 1 + rng.IntN(len(garbage))
			f, err := exchange(t, conn, garbage[:k], true)
			// Whatever the bytes claim, the stream ends with an
			// error frame (or, if they happen to be a request, an
			// answer): never silence.
			if err != nil {
				t.Fatalf("garbage of %d bytes: no answer: %v", k, err)
			}
			if f.API == wire.APIError {
				ef := errorFrame(t, f, nil)
				if ef.Message == "" || ef.StreamCode == wire.StreamCodeOK {
					t.Fatalf("unclear error frame %+v", ef)
				}
			}
		}
		metadataOK(t, conn)
	})
	t.Run("request after a session frame", func(t *testing.T) {
		raw := append(wire.AppendFrame(nil, &wire.MetadataRequest{}), wire.AppendFrame(nil, &wire.FetchSessionRequest{})...)
		str, err := conn.OpenStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_ = str.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := str.Write(raw); err != nil {
			t.Fatal(err)
		}
		if f, err := wire.ReadFrame(str, nil, wire.DefaultMaxFrame); err != nil || f.API != wire.APIMetadata {
			t.Fatalf("first answer %s, %v", f.API, err)
		}
		f, err := wire.ReadFrame(str, nil, wire.DefaultMaxFrame)
		ef := errorFrame(t, f, err)
		if !strings.Contains(ef.Message, "first frame of its stream") {
			t.Fatalf("error frame %q", ef.Message)
		}
	})
	assertServes(t, n)
	_ = conn.CloseWithError(0, "")
	base.checkGoroutines(t, n, "after bad frames", 20*time.Second)
	base.checkRSS(t, n, "after bad frames")
}

// TestBadInputQUICLengthClaims: streams whose first frame announces nearly
// the frame limit (16 MiB) and then sends nothing. The claim alone must
// not cost the server memory: 3 connections x 300 streams would be 14 GiB.
func TestBadInputQUICLengthClaims(t *testing.T) {
	n := testnode.Start(t)
	base := warmUp(t, n)
	const conns, streams = 3, 300
	var all []*quic.Conn
	for range conns {
		conn := mustDialQUIC(t, n)
		all = append(all, conn)
		for range streams {
			str, err := conn.OpenStreamSync(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			// Header and a few payload bytes, so the server is inside
			// the payload read.
			if _, err := str.Write(frameBytes(wire.DefaultMaxFrame-8, wire.Version, uint16(wire.APIProduce), make([]byte, 100))); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Every stream reached the server: it holds a goroutine per stream.
	checkFor(t, 20*time.Second, func() error {
		if g := goroutines(t, n); g < base.goroutines+conns*streams {
			return fmt.Errorf("%d goroutines: streams not all open yet", g)
		}
		return nil
	})
	time.Sleep(time.Second)
	base.checkRSS(t, n, "with 900 streams claiming 16 MiB each")
	assertServes(t, n)
	for _, c := range all {
		_ = c.CloseWithError(0, "")
	}
	base.checkGoroutines(t, n, "after the claiming streams closed", 20*time.Second)
}

// TestBadInputQUICSlowloris: streams whose first frame never completes (a
// header trickled short, or a header claiming 1 MiB followed by 10 bytes)
// on a connection the client keeps alive. The server fails them with a
// clear error after its first-frame timeout (1 minute), releasing their
// goroutines, and the connection itself serves on.
func TestBadInputQUICSlowloris(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 1 minute first-frame timeout")
	}
	t.Parallel() // mostly waiting: overlaps with the other long tests
	n := testnode.Start(t)
	base := warmUp(t, n)
	conn := mustDialQUIC(t, n)
	const streams = 200
	var slow []*quic.Stream
	for i := range streams {
		str, err := conn.OpenStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		raw := []byte{0, 0, 0}
		if i%2 == 1 {
			raw = frameBytes(1<<20, wire.Version, uint16(wire.APIProduce), make([]byte, 10))
		}
		if _, err := str.Write(raw); err != nil {
			t.Fatal(err)
		}
		slow = append(slow, str)
	}
	checkFor(t, 20*time.Second, func() error {
		if g := goroutines(t, n); g < base.goroutines+streams {
			return fmt.Errorf("%d goroutines for %d streams (baseline %d)", g, streams, base.goroutines)
		}
		return nil
	})
	assertServes(t, n)
	deadline := time.Now().Add(90 * time.Second)
	for i, str := range slow {
		_ = str.SetReadDeadline(deadline)
		f, err := wire.ReadFrame(str, nil, wire.DefaultMaxFrame)
		ef := errorFrame(t, f, err)
		if ef.Code != kerr.RequestTimedOut.Code || !strings.Contains(ef.Message, "first frame") {
			t.Fatalf("stream %d: error frame %d %q", i, ef.Code, ef.Message)
		}
		if i == 0 {
			t.Logf("slow stream: error frame %d/%d %q", ef.Code, ef.StreamCode, ef.Message)
		}
	}
	base.checkGoroutines(t, n, "after the slow streams timed out", 20*time.Second)
	metadataOK(t, conn) // the connection was not the problem
	base.checkRSS(t, n, "after the slow streams timed out")
}

// TestBadInputQUICHandshake: datagrams that are not QUIC, a TLS ClientHello
// sent as a datagram, and a QUIC handshake for an unknown ALPN protocol.
func TestBadInputQUICHandshake(t *testing.T) {
	n := testnode.Start(t)
	base := warmUp(t, n)
	udp, err := net.Dial("udp", n.QUIC)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 500; i++ {
		d := make([]byte, 1+rng.IntN(1400))
		for j := range d {
			d[j] = byte(rng.Uint32())
		}
		if i%2 == 0 {
			d[0] |= 0xc0 // looks like a QUIC long header
			if len(d) > 5 {
				binary.BigEndian.PutUint32(d[1:], 1) // QUIC v1
			}
		}
		_, _ = udp.Write(d)
	}
	// A TLS-over-TCP ClientHello, as a confused TLS client would send it.
	hello := clientHello(t)
	for i := 0; i < 10; i++ {
		_, _ = udp.Write(hello)
	}
	// The server does not answer garbage with anything a client could
	// take for a connection.
	_ = udp.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 2048)
	if k, err := udp.Read(buf); err == nil {
		t.Logf("server answered garbage with a %d-byte datagram (a version negotiation or stateless reset)", k)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := dialQUIC(ctx, n, "not-wisp/9"); err == nil {
		_ = c.CloseWithError(0, "")
		t.Fatal("handshake with an unknown ALPN protocol succeeded")
	} else if !strings.Contains(err.Error(), "no application protocol") {
		t.Fatalf("handshake with an unknown ALPN protocol: unclear error %v", err)
	} else {
		t.Logf("unknown ALPN: %v", err)
	}
	assertServes(t, n)
	base.checkGoroutines(t, n, "after garbage datagrams", 20*time.Second)
	base.checkRSS(t, n, "after garbage datagrams")
}

// clientHello returns the first TLS record a crypto/tls client writes.
func clientHello(t testing.TB) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		c := tls.Client(a, &tls.Config{ServerName: "wisp", NextProtos: []string{wire.ALPN}, MinVersion: tls.VersionTLS13})
		_ = c.Handshake()
	}()
	buf := make([]byte, 4096)
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, err := b.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:k]
}

// TestBadInputQUICIdleConnections: many connections that open nothing;
// clients that vanish without closing are shed at the server's idle
// timeout (30s).
func TestBadInputQUICIdleConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 30s idle timeout")
	}
	t.Parallel() // mostly waiting: overlaps with the other long test
	n := testnode.Start(t)
	base := warmUp(t, n)
	const idle = 100
	type vanishing struct {
		udp *net.UDPConn
		tr  *quic.Transport
	}
	var gone []vanishing
	for range idle {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		tr := &quic.Transport{Conn: udp}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = tr.Dial(ctx, mustResolveUDP(t, n.QUIC),
			&tls.Config{InsecureSkipVerify: true, NextProtos: []string{wire.ALPN}}, // the test node's self-signed certificate
			&quic.Config{MaxIdleTimeout: time.Minute})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		gone = append(gone, vanishing{udp, tr})
	}
	checkFor(t, 10*time.Second, func() error {
		if g := goroutines(t, n); g < base.goroutines+idle {
			return fmt.Errorf("%d goroutines for %d connections (baseline %d)", g, idle, base.goroutines)
		}
		return nil
	})
	base.checkRSS(t, n, "with 100 idle connections")
	assertServes(t, n)
	// The clients vanish: their sockets close without a CONNECTION_CLOSE.
	for _, v := range gone {
		_ = v.udp.Close()
	}
	base.checkGoroutines(t, n, "after idle clients vanished", 60*time.Second)
	for _, v := range gone {
		_ = v.tr.Close()
	}
}

func mustResolveUDP(t testing.TB, addr string) *net.UDPAddr {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ua
}

// TestBadInputStuckFetchSession: a fetch session whose client never reads
// while a producer writes 200 MB, and sessions asking for 1 GiB per push.
// The server's memory stays bounded (QUIC flow control holds the pushes
// back); the stuck session does not slow down other clients.
func TestBadInputStuckFetchSession(t *testing.T) {
	n := testnode.Start(t)
	base := warmUp(t, n)
	c := newClient(t, n, client.RequestTimeout(30*time.Second))
	const topic = "firehose"
	createTopic(t, c, topic, 1)

	conn := mustDialQUIC(t, n)
	var stuck []*quic.Stream
	openStuck := func(maxBytes int32) {
		str, err := conn.OpenStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		req := &wire.FetchSessionRequest{MaxBytes: maxBytes, Partitions: []wire.FetchPartition{{Topic: topic, Partition: 0, Offset: 0}}}
		if _, err := str.Write(wire.AppendFrame(nil, req)); err != nil {
			t.Fatal(err)
		}
		stuck = append(stuck, str) // never read
	}
	// Sessions that follow the producer...
	openStuck(1 << 20)
	openStuck(1 << 30)

	const size = 256 << 10
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const total = 200 << 20
	for sent := 0; sent < total; sent += size {
		// A record is the client's until its promise runs: a new value
		// each time.
		value := make([]byte, size)
		value[0] = byte(sent)
		var perr error
		c.Produce(ctx, &client.Record{Topic: topic, Value: value}, func(_ *client.Record, err error) {
			if err != nil {
				perr = err
			}
		})
		if perr != nil {
			t.Fatal(perr)
		}
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	// ... and sessions that start behind 200 MB, asking for 1 GiB per
	// push (past any frame limit).
	for range 3 {
		openStuck(1 << 30)
	}
	time.Sleep(3 * time.Second) // the sessions push what they can
	base.checkRSS(t, n, "200 MB produced past 5 stuck fetch sessions")
	assertServes(t, n)
	for _, s := range stuck {
		s.CancelRead(0)
		s.CancelWrite(0)
	}
	_ = conn.CloseWithError(0, "")
	base.checkGoroutines(t, n, "after the stuck sessions closed", 20*time.Second)
}

// --- Kafka ---

func dialKafka(t testing.TB, n *testnode.Node) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", n.Kafka, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectClosed reads (and drops) until the server closes c.
func expectClosed(t testing.TB, c net.Conn, what string, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: connection still open after %v", what, d)
	}
}

// kafkaRequest frames a request with kmsg.
func kafkaRequest(req kmsg.Request, version int16, corr int32) []byte {
	req.SetVersion(version)
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("badinput")).AppendRequest(nil, req, corr)
}

// kafkaHeader frames a request header (key, version, correlation id,
// client id "x") and body.
func kafkaHeader(key, version int16, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(2+2+4+2+1+len(body)))
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, 7)
	b = append(b, 0, 1, 'x')
	return append(b, body...)
}

// kafkaAnswer reads one response frame and returns the correlation id and
// the body.
func kafkaAnswer(t testing.TB, c net.Conn) (int32, []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("no answer: %v", err)
	}
	buf := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, buf); err != nil || len(buf) < 4 {
		t.Fatalf("answer cut: %v", err)
	}
	return int32(binary.BigEndian.Uint32(buf)), buf[4:]
}

// kafkaOK checks that a fresh Kafka connection is answered.
func kafkaOK(t testing.TB, n *testnode.Node) {
	t.Helper()
	c := dialKafka(t, n)
	if _, err := c.Write(kafkaRequest(kmsg.NewPtrApiVersionsRequest(), 0, 11)); err != nil {
		t.Fatal(err)
	}
	corr, body := kafkaAnswer(t, c)
	resp := kmsg.NewPtrApiVersionsResponse()
	if err := resp.ReadFrom(body); corr != 11 || err != nil || resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		t.Fatalf("ApiVersions: corr %d, %v, %+v", corr, err, resp)
	}
	c.Close()
}

func TestBadInputKafka(t *testing.T) {
	n := testnode.Start(t)
	base := warmUp(t, n)
	rng := rand.New(rand.NewPCG(5, 6))
	garbage := make([]byte, 256)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	metaV1 := kafkaRequest(kmsg.NewPtrMetadataRequest(), 1, 3)
	for _, tc := range []struct {
		name string
		raw  []byte
		fin  bool // half-close after writing
	}{
		{"huge length", []byte{0x7f, 0xff, 0xff, 0xff}, false},
		{"negative length", []byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3}, false},
		{"length under header", []byte{0, 0, 0, 3, 0, 18, 0}, false},
		{"truncated request", metaV1[:len(metaV1)-3], true},
		{"truncated size", []byte{0, 0}, true},
		{"unknown api key", kafkaHeader(0x7777, 0, nil), false},
		{"unsupported version", kafkaHeader(3, 99, nil), false},
		{"malformed body", kafkaHeader(3, 1, []byte{0x7f, 0xff, 0xff, 0xff}), false},
		{"garbage", append(binary.BigEndian.AppendUint32(nil, uint32(len(garbage))), garbage...), false},
		{"raw garbage", garbage, false},
		{"http on the kafka port", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialKafka(t, n)
			if _, err := c.Write(tc.raw); err != nil {
				t.Fatal(err)
			}
			if tc.fin {
				_ = c.(*net.TCPConn).CloseWrite()
			}
			// A Kafka broker closes a connection that breaks the
			// protocol; the client sees it as an error on its request.
			expectClosed(t, c, tc.name, 10*time.Second)
			kafkaOK(t, n)
		})
	}
	t.Run("unsupported ApiVersions", func(t *testing.T) {
		// The one request Kafka answers with an error instead of
		// closing: the client learns which versions exist.
		c := dialKafka(t, n)
		if _, err := c.Write(kafkaHeader(18, 99, []byte{1, 2, 3})); err != nil {
			t.Fatal(err)
		}
		corr, body := kafkaAnswer(t, c)
		resp := kmsg.NewPtrApiVersionsResponse()
		if err := resp.ReadFrom(body); err != nil || corr != 7 || resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
			t.Fatalf("corr %d, %v, %+v", corr, err, resp)
		}
	})
	t.Run("error after good requests", func(t *testing.T) {
		// Answers to the requests before the bad one still arrive.
		c := dialKafka(t, n)
		raw := append(kafkaRequest(kmsg.NewPtrApiVersionsRequest(), 0, 1), kafkaRequest(kmsg.NewPtrMetadataRequest(), 1, 2)...)
		raw = append(raw, kafkaHeader(0x7777, 0, nil)...)
		if _, err := c.Write(raw); err != nil {
			t.Fatal(err)
		}
		for _, want := range []int32{1, 2} {
			if corr, _ := kafkaAnswer(t, c); corr != want {
				t.Fatalf("answer %d, want %d", corr, want)
			}
		}
		expectClosed(t, c, "after the unknown key", 10*time.Second)
	})
	assertServes(t, n)
	base.checkGoroutines(t, n, "after bad kafka requests", 20*time.Second)
	base.checkRSS(t, n, "after bad kafka requests")
}

// TestBadInputKafkaLengthClaims: connections that announce a request just
// under the 100 MiB limit and send a few bytes of it. 40 of them would be
// 4 GiB if the claim were allocated.
func TestBadInputKafkaLengthClaims(t *testing.T) {
	n := testnode.Start(t)
	base := warmUp(t, n)
	const conns = 40
	var all []net.Conn
	for range conns {
		c := dialKafka(t, n)
		raw := kafkaHeader(0, 9, make([]byte, 1000))
		binary.BigEndian.PutUint32(raw, 100<<20-1)
		if _, err := c.Write(raw); err != nil {
			t.Fatal(err)
		}
		all = append(all, c)
	}
	time.Sleep(2 * time.Second)
	base.checkRSS(t, n, "40 connections claiming 100 MiB requests")
	kafkaOK(t, n)
	assertServes(t, n)
	for _, c := range all {
		c.Close()
	}
	base.checkGoroutines(t, n, "after the claiming connections closed", 20*time.Second)
}

// TestBadInputKafkaSlowloris: many connections that send nothing, and some
// that send a request one byte a second. They cost a little memory each,
// other clients are served meanwhile, and everything held for them is
// released when they close.
func TestBadInputKafkaSlowloris(t *testing.T) {
	n := testnode.Start(t)
	base := warmUp(t, n)
	const idle, trickle = 300, 20
	var all []net.Conn
	for range idle {
		all = append(all, dialKafka(t, n))
	}
	req := kafkaRequest(kmsg.NewPtrMetadataRequest(), 1, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	var trickling []net.Conn
	for range trickle {
		trickling = append(trickling, dialKafka(t, n))
	}
	go func() {
		defer close(done)
		for i := 0; i < len(req)-1; i++ {
			for _, c := range trickling {
				_, _ = c.Write(req[i : i+1])
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	checkFor(t, 10*time.Second, func() error {
		if g := goroutines(t, n); g < base.goroutines+idle {
			return fmt.Errorf("%d goroutines for %d connections (baseline %d)", g, idle+trickle, base.goroutines)
		}
		return nil
	})
	time.Sleep(3 * time.Second)
	base.checkRSS(t, n, "320 slow kafka connections")
	kafkaOK(t, n)
	assertServes(t, n)
	cancel()
	<-done
	for _, c := range append(all, trickling...) {
		c.Close()
	}
	base.checkGoroutines(t, n, "after the slow connections closed", 20*time.Second)
}

// TestBadInputKafkaStuckConsumer: a Kafka client pipelines 32 Fetch
// requests for 32 MB each (of a 64 MB log) and never reads the answers.
// Its connection may hold back a bounded amount of memory, not one full
// answer per request, and it is closed once writing to it has been stuck
// for the write timeout.
func TestBadInputKafkaStuckConsumer(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 30s write timeout")
	}
	t.Parallel() // mostly waiting: overlaps with the other long test
	n := testnode.Start(t)
	warmUp(t, n)
	c := newClient(t, n, client.RequestTimeout(30*time.Second))
	const topic = "kfirehose"
	createTopic(t, c, topic, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	value := make([]byte, 256<<10)
	for sent := 0; sent < 64<<20; sent += len(value) {
		c.Produce(ctx, &client.Record{Topic: topic, Value: value}, nil)
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Measured after producing: the producer's memory is not the point.
	base := measure(t, n)

	kc := dialKafka(t, n)
	// A small receive buffer, so the server's writes block early.
	_ = kc.(*net.TCPConn).SetReadBuffer(16 << 10)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxBytes, fetch.MaxWaitMillis = 32<<20, 100
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 32 << 20
	ft.Partitions = []kmsg.FetchRequestTopicPartition{fp}
	fetch.Topics = []kmsg.FetchRequestTopic{ft}
	var sent int
	_ = kc.SetWriteDeadline(time.Now().Add(20 * time.Second))
	for i := range 32 {
		if _, err := kc.Write(kafkaRequest(fetch, 4, int32(i))); err != nil {
			break // the server stopped reading: backpressure
		}
		sent++
	}
	t.Logf("%d fetches of 32 MB sent, none read", sent)
	time.Sleep(3 * time.Second)
	base.checkRSS(t, n, "kafka consumer not reading 32 MB fetches")
	kafkaOK(t, n)
	assertServes(t, n)
	// Stuck writes are given up after the write timeout (30s without
	// progress): the server closes the connection. Reading now gets what
	// the socket buffers held, then the end, not gigabytes of answers.
	time.Sleep(40 * time.Second)
	_ = kc.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.Copy(io.Discard, io.LimitReader(kc, 256<<20))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || got >= 256<<20 {
		t.Fatalf("stuck connection not closed by the server: read %d MiB, %v", got>>20, err)
	}
	t.Logf("after the write timeout: %d KiB left in the socket buffers, then %v", got>>10, err)
	base.checkGoroutines(t, n, "after the stuck kafka connection was shed", 20*time.Second)
	// What it held is released (RSS stays: Go keeps freed memory).
	checkFor(t, 20*time.Second, func() error {
		if h := int64(metric(t, n, "go_memstats_heap_inuse_bytes")); h-base.heap > 64<<20 {
			return fmt.Errorf("heap in use %d MiB, %d MiB before the stuck consumer", h>>20, base.heap>>20)
		}
		return nil
	})
}

// --- HTTP ---

func TestBadInputHTTP(t *testing.T) {
	n := testnode.Start(t)
	base := warmUp(t, n)
	c := newClient(t, n)
	createTopic(t, c, "h", 1)

	checkErr := func(t *testing.T, status int, body []byte, want int) {
		t.Helper()
		var e struct {
			Code    int    `json:"error_code"`
			Message string `json:"message"`
		}
		if status != want || json.Unmarshal(body, &e) != nil || e.Code == 0 || e.Message == "" {
			t.Fatalf("status %d (want %d), body %q: want a JSON error with a code and message", status, want, body)
		}
		t.Logf("%d: %s", status, body)
	}
	t.Run("oversized body", func(t *testing.T) {
		// 8 MiB is the default limit; a body of 64 MiB is refused
		// without being read whole.
		big := `{"records":[{"value":"` + strings.Repeat("x", 64<<20) + `"}]}`
		status, _, body := httpDo(t, n, "POST", "/v1/topics/h/records", "application/json", big)
		checkErr(t, status, body, http.StatusRequestEntityTooLarge)
	})
	t.Run("oversized ndjson line", func(t *testing.T) {
		// NDJSON answers line by line: the long line is refused with
		// 41301, the next one is still written.
		body := `{"value":"` + strings.Repeat("y", 9<<20) + `"}` + "\n" + `{"value":"short"}` + "\n"
		status, _, out := httpDo(t, n, "POST", "/v1/topics/h/records", "application/x-ndjson", body)
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if status != http.StatusOK || len(lines) != 2 || !strings.Contains(lines[0], `"error_code":41301`) || strings.Contains(lines[1], "error") {
			t.Fatalf("status %d: %s", status, out)
		}
		t.Logf("%d: %s", status, out)
	})
	for _, tc := range []struct {
		name, path, ctype, body string
		status                  int
	}{
		{"bad json", "/v1/topics/h/records", "application/json", `{"records":[{"value":`, http.StatusBadRequest},
		{"json of the wrong shape", "/v1/topics/h/records", "application/json", `{"records":{"value":1}}`, http.StatusUnprocessableEntity},
		{"bad base64", "/v1/topics/h/records", "application/json", `{"value_format":"binary","records":[{"value":"***"}]}`, http.StatusUnprocessableEntity},
		{"v2 bad json", "/topics/h", "application/vnd.kafka.json.v2+json", `{"records":[`, http.StatusBadRequest},
		{"v2 bad base64", "/topics/h", "application/vnd.kafka.binary.v2+json", `{"records":[{"value":"%%%"}]}`, http.StatusUnprocessableEntity},
		{"create topic bad json", "/v1/topics", "application/json", `{"name":`, http.StatusBadRequest},
		{"deploy not multipart", "/v1/functions", "application/json", `{}`, http.StatusUnsupportedMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := httpDo(t, n, "POST", tc.path, tc.ctype, tc.body)
			checkErr(t, status, body, tc.status)
		})
	}
	t.Run("truncated chunked body", func(t *testing.T) {
		conn, err := net.Dial("tcp", n.HTTP)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /v1/topics/h/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
		fmt.Fprintf(conn, "20\r\n{\"records\":[{\"value\":\"cut\r\n")
		_ = conn.(*net.TCPConn).CloseWrite()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			// Closing without an answer is fine too: the request never
			// ended.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("no answer and not closed after 10s")
			}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		checkErr(t, resp.StatusCode, body, http.StatusBadRequest)
	})
	t.Run("bad chunk size", func(t *testing.T) {
		conn, err := net.Dial("tcp", n.HTTP)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /v1/topics/h/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("slow headers", func(t *testing.T) {
		// Headers that never end are cut at ReadHeaderTimeout (10s).
		conn, err := net.Dial("tcp", n.HTTP)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /v1/topics HTTP/1.1\r\nHost: x\r\n")
		expectClosed(t, conn, "headers never ending", 20*time.Second)
	})
	assertServes(t, n)
	base.checkGoroutines(t, n, "after bad http requests", 20*time.Second)
	base.checkRSS(t, n, "after bad http requests")
}
