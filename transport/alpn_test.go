package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/transport/wire"
)

const testALPN = "wisp-test/1"

// alpnServer is a started server on addr (port 0: any) whose extra
// protocol echoes every stream.
func alpnServer(t *testing.T, dir, addr string) *Server {
	t.Helper()
	bcfg := bus.DefaultConfig()
	bcfg.DataDir = filepath.Join(dir, "broker")
	bcfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := bus.Open(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	cfg := DefaultConfig()
	cfg.Addr = addr
	cfg.DataDir = dir
	cfg.Logger = bcfg.Logger
	s, err := NewServer(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.HandleALPN(wire.ALPN, func(context.Context, *quic.Conn) {}); err == nil {
		t.Fatal("HandleALPN accepted the native protocol")
	}
	if err := s.HandleALPN(testALPN, echo); err != nil {
		t.Fatal(err)
	}
	if err := s.HandleALPN(testALPN, echo); err == nil {
		t.Fatal("HandleALPN accepted a protocol twice")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.HandleALPN("late/1", echo); err == nil {
		t.Fatal("HandleALPN accepted after Start")
	}
	return s
}

// echo serves the streams of conn one at a time by copying each back,
// until ctx ends.
func echo(ctx context.Context, conn *quic.Conn) {
	for {
		str, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		_, _ = io.Copy(str, str)
		_ = str.Close()
	}
}

func roundTrip(t *testing.T, conn *quic.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := str.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = str.Close()
	got, err := io.ReadAll(str)
	if err != nil || string(got) != msg {
		t.Fatalf("echo %q, %v", got, err)
	}
}

func TestHandleALPNAndDialPeer(t *testing.T) {
	dirA := t.TempDir()
	a := alpnServer(t, dirA, "127.0.0.1:0")
	b := alpnServer(t, t.TempDir(), "127.0.0.1:0")
	defer b.Close(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrA := a.Addr().String()
	conn, err := b.DialPeer(ctx, addrA, testALPN)
	if err != nil {
		t.Fatal(err)
	}
	if p := conn.ConnectionState().TLS.NegotiatedProtocol; p != testALPN {
		t.Fatalf("negotiated %q", p)
	}
	roundTrip(t, conn, "hello")
	if _, err := b.DialPeer(ctx, addrA, "unknown/1"); err == nil {
		t.Fatal("dialed an unregistered protocol")
	}

	// A restarted server (same data dir, so same key) resets the old
	// incarnation's connections: the peer learns at its next packet.
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Close sent CONNECTION_CLOSE already; dial again to get a connection
	// that the restart will orphan silently.
	a = alpnServer(t, dirA, addrA)
	conn, err = b.DialPeer(ctx, addrA, testALPN)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, conn, "again")
	// Simulate a crash: drop the socket without closing connections.
	a.mu.Lock()
	udp := a.udp
	a.mu.Unlock()
	_ = udp.Close()
	_ = a.Close(ctx)
	a = alpnServer(t, dirA, addrA)
	defer a.Close(context.Background())
	if str, err := conn.OpenStreamSync(ctx); err == nil {
		_, _ = str.Write([]byte("anyone?"))
	}
	select {
	case <-conn.Context().Done():
	case <-ctx.Done():
		t.Fatal("the old connection survived the restart")
	}
	var reset *quic.StatelessResetError
	if cause := context.Cause(conn.Context()); !errors.As(cause, &reset) {
		t.Fatalf("old connection ended by %v, not a stateless reset", cause)
	}

	// DialPeer needs a started, open server.
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DialPeer(ctx, addrA, testALPN); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("dial on a closed server: %v", err)
	}
}
