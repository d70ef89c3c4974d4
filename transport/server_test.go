package transport

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/batch"
	"github.com/wispbus/wisp/transport/wire"
)

type node struct {
	b   *bus.Broker
	srv *Server
}

func startNode(t *testing.T, mut func(*Config)) *node {
	t.Helper()
	dir := t.TempDir()
	bcfg := bus.DefaultConfig()
	bcfg.DataDir = dir
	bcfg.TopicDefaults = map[string]string{"flush": "os"}
	bcfg.Logger = slog.New(slog.DiscardHandler)
	b, err := bus.Open(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.Logger = slog.New(slog.DiscardHandler)
	if mut != nil {
		mut(&cfg)
	}
	srv, err := NewServer(cfg, b)
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Close()
		t.Fatal(err)
	}
	n := &node{b: b, srv: srv}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		b.Close()
	})
	return n
}

func dial(t *testing.T, n *node) *quic.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, n.srv.Addr().String(),
		&tls.Config{InsecureSkipVerify: true, NextProtos: []string{wire.ALPN}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	return conn
}

// request does one request/response on a fresh stream.
func request(t *testing.T, conn *quic.Conn, req, resp wire.Message) {
	t.Helper()
	str, err := conn.OpenStreamSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_ = str.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := str.Write(wire.AppendFrame(nil, req)); err != nil {
		t.Fatal(err)
	}
	str.Close()
	f, err := wire.ReadFrame(str, nil, wire.DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.Decode(f, resp); err != nil {
		t.Fatal(err)
	}
}

// rawStream writes raw bytes and returns what the server answered: the
// ErrorFrame, and the stream error code seen when writing more.
func rawStream(t *testing.T, conn *quic.Conn, raw []byte, fin bool) (wire.ErrorFrame, uint64) {
	t.Helper()
	str, err := conn.OpenStreamSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_ = str.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := str.Write(raw); err != nil {
		t.Fatal(err)
	}
	if fin {
		str.Close()
	}
	f, err := wire.ReadFrame(str, nil, wire.DefaultMaxFrame)
	if err != nil {
		t.Fatalf("reading the error frame: %v", err)
	}
	var ef wire.ErrorFrame
	if err := wire.Decode(f, &ef); err != nil {
		t.Fatalf("expected an ErrorFrame, got %s: %v", f.API, err)
	}
	if _, err := wire.ReadFrame(str, nil, wire.DefaultMaxFrame); !errors.Is(err, io.EOF) {
		t.Fatalf("after the error frame: %v, want EOF", err)
	}
	// The server stopped reading: writing more fails with its code.
	var code uint64
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && !fin {
		_, err := str.Write(make([]byte, 1024))
		var se *quic.StreamError
		if errors.As(err, &se) {
			code = uint64(se.ErrorCode)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ef, code
}

func frameBytes(version uint8, api wire.API, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(3+len(payload)))
	b = append(b, version)
	b = binary.BigEndian.AppendUint16(b, uint16(api))
	return append(b, payload...)
}

func TestBadFramesFailTheStreamNotTheConnection(t *testing.T) {
	n := startNode(t, func(c *Config) { c.MaxFrameBytes = 1 << 20 })
	conn := dial(t, n)
	cases := []struct {
		name      string
		raw       []byte
		fin       bool
		code      uint64
		kafkaCode int16
	}{
		{"oversized", binary.BigEndian.AppendUint32(nil, 64<<20), false, wire.StreamCodeTooLarge, kerr.MessageTooLarge.Code},
		{"just over the limit", binary.BigEndian.AppendUint32(nil, 1<<20-3), false, wire.StreamCodeTooLarge, kerr.MessageTooLarge.Code},
		{"length under 3", []byte{0, 0, 0, 1, 9}, false, wire.StreamCodeMalformed, kerr.InvalidRequest.Code},
		{"huge array count", frameBytes(1, wire.APIMetadata, []byte{0xff, 0xff, 0xff, 0xff, 0}), false, wire.StreamCodeMalformed, kerr.InvalidRequest.Code},
		{"trailing bytes", frameBytes(1, wire.APIClusterInfo, []byte{1, 2, 3}), false, wire.StreamCodeMalformed, kerr.InvalidRequest.Code},
		{"bad bool", frameBytes(1, wire.APIMetadata, []byte{0, 0, 0, 0, 7}), false, wire.StreamCodeMalformed, kerr.InvalidRequest.Code},
		{"unknown api", frameBytes(1, 0x7777, nil), false, wire.StreamCodeUnsupported, kerr.UnsupportedVersion.Code},
		{"unknown version", frameBytes(9, wire.APIClusterInfo, nil), false, wire.StreamCodeUnsupported, kerr.UnsupportedVersion.Code},
		{"response api as request", frameBytes(1, wire.APIFetchPush, nil), false, wire.StreamCodeUnsupported, kerr.UnsupportedVersion.Code},
		{"truncated then FIN", frameBytes(1, wire.APIMetadata, []byte{0, 0, 0, 5})[:9], true, wire.StreamCodeMalformed, kerr.InvalidRequest.Code},
		{"bad frame on a produce stream", append(wire.AppendFrame(nil, &wire.ProduceRequest{Topic: "nope", Acks: 1, Batches: []byte{1}}),
			frameBytes(1, wire.APIProduce, []byte{1})...), false, wire.StreamCodeMalformed, kerr.InvalidRequest.Code},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "bad frame on a produce stream" {
				// The first (valid) request is answered before the error.
				str, _ := conn.OpenStreamSync(context.Background())
				_ = str.SetDeadline(time.Now().Add(5 * time.Second))
				str.Write(c.raw)
				f, err := wire.ReadFrame(str, nil, wire.DefaultMaxFrame)
				if err != nil {
					t.Fatal(err)
				}
				var pr wire.ProduceResponse
				if err := wire.Decode(f, &pr); err != nil || pr.Code != kerr.UnknownTopicOrPartition.Code {
					t.Fatalf("first answer %+v %v", pr, err)
				}
				if f, err = wire.ReadFrame(str, nil, wire.DefaultMaxFrame); err != nil || f.API != wire.APIError {
					t.Fatalf("then %v %v, want an error frame", f.API, err)
				}
				return
			}
			ef, code := rawStream(t, conn, c.raw, c.fin)
			if ef.Code != c.kafkaCode || ef.StreamCode != c.code || ef.Message == "" {
				t.Errorf("error frame %+v, want kafka code %d stream code %d", ef, c.kafkaCode, c.code)
			}
			if !c.fin && code != c.code {
				t.Errorf("stream error code %d, want %d", code, c.code)
			}
			// The connection still serves.
			var ci wire.ClusterInfoResponse
			request(t, conn, &wire.ClusterInfoRequest{}, &ci)
			if ci.NodeID != n.b.NodeID() || ci.Version == "" {
				t.Fatalf("cluster info after a bad frame: %+v", ci)
			}
		})
	}
}

func TestProduceFetchOverRawStreams(t *testing.T) {
	n := startNode(t, nil)
	conn := dial(t, n)
	var ct wire.CreateTopicResponse
	request(t, conn, &wire.CreateTopicRequest{Name: "raw", Partitions: 2}, &ct)
	if ct.Code != 0 || len(ct.Topic.Partitions) != 2 {
		t.Fatalf("create: %+v", ct)
	}
	// A fetch session waits (long poll) until something is produced.
	sess, _ := conn.OpenStreamSync(context.Background())
	_ = sess.SetDeadline(time.Now().Add(10 * time.Second))
	sess.Write(wire.AppendFrame(nil, &wire.FetchSessionRequest{Partitions: []wire.FetchPartition{{Topic: "raw", Partition: 1}}}))

	b, err := batch.Build(batch.NoProducer, []batch.Record{{Value: []byte("hello")}, {Value: []byte("world")}})
	if err != nil {
		t.Fatal(err)
	}
	str, _ := conn.OpenStreamSync(context.Background())
	_ = str.SetDeadline(time.Now().Add(5 * time.Second))
	for i := range 3 {
		str.Write(wire.AppendFrame(nil, &wire.ProduceRequest{Corr: uint32(i), Acks: 1, Topic: "raw", Partition: 1, Batches: b}))
	}
	for i := range 3 {
		f, err := wire.ReadFrame(str, nil, wire.DefaultMaxFrame)
		if err != nil {
			t.Fatal(err)
		}
		var pr wire.ProduceResponse
		if err := wire.Decode(f, &pr); err != nil || pr.Code != 0 || pr.Corr != uint32(i) || pr.BaseOffset != int64(2*i) {
			t.Fatalf("answer %d: %+v %v", i, pr, err)
		}
	}
	str.Close()
	var got int
	for got < 6 {
		f, err := wire.ReadFrame(sess, nil, wire.DefaultMaxFrame)
		if err != nil {
			t.Fatal(err)
		}
		var push wire.FetchPush
		if err := wire.Decode(f, &push); err != nil || push.Code != 0 {
			t.Fatalf("push %+v %v", push, err)
		}
		_ = batch.Each(push.Batches, func(h batch.Header, _ []byte) error {
			got += int(h.NumRecords)
			return nil
		})
	}
	var lo wire.ListOffsetsResponse
	request(t, conn, &wire.ListOffsetsRequest{Partitions: []wire.ListOffsetsPartition{{Topic: "raw", Partition: -1, Timestamp: -1}}}, &lo)
	if len(lo.Partitions) != 2 || lo.Partitions[1].Offset != 6 {
		t.Fatalf("list offsets: %+v", lo)
	}
	var fr wire.FetchResponse
	request(t, conn, &wire.FetchRequest{MaxWaitMs: 10, Partitions: []wire.FetchPartition{{Topic: "raw", Partition: 1, Offset: 4}}}, &fr)
	if len(fr.Partitions) != 1 || len(fr.Partitions[0].Batches) == 0 || fr.Partitions[0].HighWatermark != 6 {
		t.Fatalf("fetch: %+v", fr)
	}
	request(t, conn, &wire.FetchRequest{Partitions: []wire.FetchPartition{{Topic: "raw", Partition: 1, Offset: 99}}}, &fr)
	if fr.Partitions[0].Code != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch out of range: %+v", fr.Partitions[0])
	}
}

// Close returns with a fetch session parked on Watch and a join blocked in
// the coordinator, and nothing of the server is left running.
func TestCloseStopsEverything(t *testing.T) {
	n := startNode(t, nil)
	conn := dial(t, n)
	var ct wire.CreateTopicResponse
	request(t, conn, &wire.CreateTopicRequest{Name: "c", Partitions: 1}, &ct)
	sess, _ := conn.OpenStreamSync(context.Background())
	sess.Write(wire.AppendFrame(nil, &wire.FetchSessionRequest{Partitions: []wire.FetchPartition{{Topic: "c"}}}))
	join := func() {
		str, _ := conn.OpenStreamSync(context.Background())
		str.Write(wire.AppendFrame(nil, &wire.JoinGroupRequest{Group: "g", ProtocolType: "consumer",
			Protocols: []wire.GroupProtocol{{Name: "range"}}, SessionTimeoutMs: 6000, RebalanceTimeoutMs: 60000}))
		str.Close()
	}
	join()
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := n.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("close took %v", time.Since(start))
	}
	if err := n.srv.Start(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("start after close: %v", err)
	}
}
