package kafkaapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/batch"
)

// rawConn speaks the protocol by hand, to test framing, ordering and
// malformed input.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	f  *kmsg.RequestFormatter
}

func dialRaw(t testing.TB, ts *testServer) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, nc: nc, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw-test"))}
}

// send writes req at version v with correlation id corr.
func (c *rawConn) send(req kmsg.Request, v int16, corr int32) {
	c.t.Helper()
	req.SetVersion(v)
	if _, err := c.nc.Write(c.f.AppendRequest(nil, req, corr)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// frame reads one response frame: correlation id and what follows it.
func (c *rawConn) frame() (int32, []byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.nc, buf); err != nil {
		return 0, nil, err
	}
	if len(buf) < 4 {
		return 0, nil, errors.New("short response frame")
	}
	return int32(binary.BigEndian.Uint32(buf)), buf[4:], nil
}

// recv reads the response to a request sent at version v, checking the
// correlation id.
func (c *rawConn) recv(resp kmsg.Response, v int16, corr int32) {
	c.t.Helper()
	got, body, err := c.frame()
	if err != nil {
		c.t.Fatalf("reading response %d: %v", corr, err)
	}
	if got != corr {
		c.t.Fatalf("response correlation id %d, want %d", got, corr)
	}
	resp.SetVersion(v)
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		if len(body) == 0 || body[0] != 0 {
			c.t.Fatalf("flexible response header: want an empty tag section, got %x", body[:min(len(body), 4)])
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decoding %T v%d: %v", resp, v, err)
	}
}

// expectClosed checks that the server closes the connection.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.frame()
		if err == nil {
			continue // answers to earlier requests
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			return
		}
		c.t.Fatalf("connection not closed by the server: %v", err)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

func TestAPIVersions(t *testing.T) {
	ts := startServer(t)
	for v := int16(0); v <= 4; v++ {
		c := dialRaw(t, ts)
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName, req.ClientSoftwareVersion = "raw-test", "1.0"
		c.send(req, v, 7)
		resp := kmsg.NewPtrApiVersionsResponse()
		// ApiVersions answers with response header v0 even when the
		// request was flexible (v3+); recv would fail otherwise.
		c.recv(resp, v, 7)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: error %d", v, resp.ErrorCode)
		}
		if len(resp.ApiKeys) != len(apis) {
			t.Fatalf("v%d: %d keys, want %d", v, len(resp.ApiKeys), len(apis))
		}
	}
	// Newer than supported, as librdkafka and franz-go start: a v0 answer
	// with UNSUPPORTED_VERSION and the supported versions, whatever the
	// body holds.
	for _, v := range []int16{5, 99} {
		c := dialRaw(t, ts)
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName, req.ClientSoftwareVersion = "raw-test", "1.0"
		c.send(req, v, 9)
		resp := kmsg.NewPtrApiVersionsResponse()
		c.recv(resp, 0, 9)
		if resp.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Fatalf("v%d: error %d, want UNSUPPORTED_VERSION", v, resp.ErrorCode)
		}
		i := slices.IndexFunc(resp.ApiKeys, func(k kmsg.ApiVersionsResponseApiKey) bool { return k.ApiKey == apiVersionsKey })
		if i < 0 || resp.ApiKeys[i].MaxVersion != 4 {
			t.Fatalf("v%d: ApiVersions entry %v", v, resp.ApiKeys)
		}
		// The connection goes on: the client retries on it.
		c.send(kmsg.NewPtrApiVersionsRequest(), 3, 10)
		c.recv(kmsg.NewPtrApiVersionsResponse(), 3, 10)
	}
}

func produceReq(topic string, partition int32, acks int16, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func fetchReq(topic string, partition int32, offset int64, maxWait, minBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, minBytes, 1<<20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func mustBatch(t testing.TB, recs ...batch.Record) []byte {
	t.Helper()
	b, err := batch.Build(batch.NoProducer, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPipelining: a long-poll Fetch does not stop the requests behind it
// from being read and handled (the Produce behind it is what wakes it),
// and responses leave in request order.
func TestPipelining(t *testing.T) {
	ts := startServer(t)
	createTopic(t, ts, "pipe", 1)
	c := dialRaw(t, ts)
	start := time.Now()
	c.send(fetchReq("pipe", 0, 0, 10000, 1), 11, 1)
	c.send(produceReq("pipe", 0, 1, mustBatch(t, batch.Record{Value: []byte("wake up")})), 9, 2)
	c.send(kmsg.NewPtrMetadataRequest(), 12, 3)

	fresp := kmsg.NewPtrFetchResponse()
	c.recv(fresp, 11, 1)
	p := fresp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
		t.Fatalf("fetch: error %d, %d bytes", p.ErrorCode, len(p.RecordBatches))
	}
	recs, err := batch.Records(p.RecordBatches)
	if err != nil || len(recs) != 1 || string(recs[0].Value) != "wake up" {
		t.Fatalf("fetched %v, %v", recs, err)
	}
	presp := kmsg.NewPtrProduceResponse()
	c.recv(presp, 9, 2)
	if code := presp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce error %d", code)
	}
	c.recv(kmsg.NewPtrMetadataResponse(), 12, 3)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the fetch waited %v: the produce behind it was not handled", d)
	}
}

// TestLongPollTimeout: a fetch with nothing to return waits MaxWaitMillis
// and answers empty.
func TestLongPollTimeout(t *testing.T) {
	ts := startServer(t)
	createTopic(t, ts, "idle", 1)
	c := dialRaw(t, ts)
	start := time.Now()
	c.send(fetchReq("idle", 0, 0, 300, 1), 11, 1)
	resp := kmsg.NewPtrFetchResponse()
	c.recv(resp, 11, 1)
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("answered after %v, want about 300ms", d)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 0 {
		t.Errorf("partition %+v", p)
	}
}

// TestProduceAcksZero: no response, the next request's comes first, and
// the record is written.
func TestProduceAcksZero(t *testing.T) {
	ts := startServer(t)
	createTopic(t, ts, "fire", 1)
	c := dialRaw(t, ts)
	c.send(produceReq("fire", 0, 0, mustBatch(t, batch.Record{Value: []byte("and forget")})), 7, 1)
	c.send(kmsg.NewPtrApiVersionsRequest(), 3, 2)
	c.recv(kmsg.NewPtrApiVersionsResponse(), 3, 2)
	checkFor(t, 5*time.Second, func() error {
		if hw := mustTopic(t, ts, "fire").Partitions[0].HighWatermark; hw != 1 {
			return errors.New("record not written")
		}
		return nil
	})
}

// legacyMessageSet builds a v0/v1 message set entry (magic 0 or 1).
func legacyMessageSet(magic byte) []byte {
	var msg []byte
	msg = append(msg, 0, 0, 0, 0) // crc, filled below
	msg = append(msg, magic, 0)   // magic, attributes
	if magic == 1 {
		msg = binary.BigEndian.AppendUint64(msg, uint64(time.Now().UnixMilli()))
	}
	msg = binary.BigEndian.AppendUint32(msg, 0xffffffff) // null key
	msg = binary.BigEndian.AppendUint32(msg, 5)
	msg = append(msg, "hello"...)
	binary.BigEndian.PutUint32(msg, crc32.ChecksumIEEE(msg[4:]))
	out := binary.BigEndian.AppendUint64(nil, 0)
	out = binary.BigEndian.AppendUint32(out, uint32(len(msg)))
	return append(out, msg...)
}

// TestProduceRejects: message formats before RecordBatch v2 and corrupt
// batches are refused per partition, and nothing reaches the log.
func TestProduceRejects(t *testing.T) {
	ts := startServer(t)
	createTopic(t, ts, "strict", 1)
	good := mustBatch(t, batch.Record{Value: []byte("ok")})
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 0xff
	cases := []struct {
		name    string
		version int16
		records []byte
		code    int16
	}{
		{"magic 0 at v0", 0, legacyMessageSet(0), kerr.UnsupportedForMessageFormat.Code},
		{"magic 1 at v2", 2, legacyMessageSet(1), kerr.UnsupportedForMessageFormat.Code},
		{"magic 1 at v7", 7, legacyMessageSet(1), kerr.UnsupportedForMessageFormat.Code},
		{"magic 2 then magic 1", 7, append(bytes.Clone(good), legacyMessageSet(1)...), kerr.UnsupportedForMessageFormat.Code},
		{"bad crc", 9, badCRC, kerr.CorruptMessage.Code},
		{"truncated", 9, good[:len(good)-3], kerr.CorruptMessage.Code},
		{"too short", 9, good[:10], kerr.CorruptMessage.Code},
		{"no records", 9, nil, kerr.CorruptMessage.Code},
	}
	c := dialRaw(t, ts)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.send(produceReq("strict", 0, -1, tc.records), tc.version, int32(i))
			resp := kmsg.NewPtrProduceResponse()
			c.recv(resp, tc.version, int32(i))
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != tc.code {
				t.Errorf("error %d, want %d", code, tc.code)
			}
		})
	}
	if hw := mustTopic(t, ts, "strict").Partitions[0].HighWatermark; hw != 0 {
		t.Fatalf("rejected batches reached the log: high watermark %d", hw)
	}
	// Unknown topics are auto-created on produce (the default); invalid
	// acks are refused.
	c.t = t
	c.send(produceReq("autocreated", 0, 1, good), 9, 100)
	resp := kmsg.NewPtrProduceResponse()
	c.recv(resp, 9, 100)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("produce to a new topic: %+v", p)
	}
	c.send(produceReq("autocreated", 0, 2, good), 9, 101)
	c.recv(resp, 9, 101)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidRequiredAcks.Code {
		t.Fatalf("acks=2: error %d", code)
	}
}

// TestBadFrames: every malformed input closes the connection (after a log
// line) and leaves the server serving others.
func TestBadFrames(t *testing.T) {
	ts := startServer(t)
	frame := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	header := func(key, version int16) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, 1)
		return binary.BigEndian.AppendUint16(b, 0xffff) // null client id
	}
	cases := []struct {
		name string
		data []byte
	}{
		{"frame over the limit", binary.BigEndian.AppendUint32(nil, DefaultMaxRequestBytes+1)},
		{"negative frame size", binary.BigEndian.AppendUint32(nil, 0x80000000)},
		{"frame shorter than a header", frame([]byte{0, 3, 0})},
		{"client id past the end", frame(append(header(3, 1)[:8], 0x7f, 0xff))},
		{"unknown api key", frame(header(999, 0))},
		{"unsupported api (AddPartitionsToTxn)", frame(header(24, 0))},
		{"unsupported version", frame(header(3, 99))},
		{"fetch below v4", frame(header(1, 3))},
		{"truncated body", frame(append(header(3, 1), 0, 0, 0, 5, 0, 3))},
		{"bad header tags", frame(append(header(3, 9), 0x05))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, ts)
			// A valid request first: its answer is still sent.
			c.send(kmsg.NewPtrApiVersionsRequest(), 0, 42)
			c.write(tc.data)
			c.recv(kmsg.NewPtrApiVersionsResponse(), 0, 42)
			c.expectClosed()
		})
	}
	// Still serving.
	c := dialRaw(t, ts)
	c.send(kmsg.NewPtrMetadataRequest(), 1, 1)
	c.recv(kmsg.NewPtrMetadataResponse(), 1, 1)
}

// TestFetchLimits: the partition and response byte limits hold, except
// for the first batch of the first partition with data (KIP-74).
func TestFetchLimits(t *testing.T) {
	ts := startServer(t)
	createTopic(t, ts, "limits", 2)
	val := bytes.Repeat([]byte("x"), 1000)
	var size int
	for p := int32(0); p < 2; p++ {
		for range 3 {
			b := mustBatch(t, batch.Record{Value: val})
			size = len(b)
			if _, err := ts.b.Produce(context.Background(), "limits", p, b, bus.AcksLeader); err != nil {
				t.Fatal(err)
			}
		}
	}
	fetch := func(maxBytes, partMax int32) []int {
		c := dialRaw(t, ts)
		req := kmsg.NewPtrFetchRequest()
		req.MaxBytes, req.SessionEpoch = maxBytes, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "limits"
		for p := int32(0); p < 2; p++ {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.PartitionMaxBytes = p, partMax
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		c.send(req, 11, 1)
		resp := kmsg.NewPtrFetchResponse()
		c.recv(resp, 11, 1)
		var got []int
		for _, p := range resp.Topics[0].Partitions {
			if p.ErrorCode != 0 || p.HighWatermark != 3 {
				t.Fatalf("partition %d: error %d, high watermark %d", p.Partition, p.ErrorCode, p.HighWatermark)
			}
			got = append(got, len(p.RecordBatches)/size)
		}
		return got
	}
	cases := []struct {
		maxBytes, partMax int32
		want              []int
	}{
		{100, 100, []int{1, 0}},                               // both limits under one batch: only the first batch
		{1 << 20, int32(2*size + 10), []int{2, 2}},            // partition limit
		{int32(3*size + 10), 1 << 20, []int{3, 0}},            // response limit
		{int32(4*size + 10), int32(2*size + 10), []int{2, 2}}, // both
		{int32(3*size + 10), int32(2*size + 10), []int{2, 1}},
		{int32(size + 10), 1 << 20, []int{1, 0}}, // the response limit binds the first partition too
	}
	for _, c := range cases {
		if got := fetch(c.maxBytes, c.partMax); !slices.Equal(got, c.want) {
			t.Errorf("max %d, partition max %d: batches %v, want %v", c.maxBytes, c.partMax, got, c.want)
		}
	}
}

// xerialBatch builds a batch whose records are snappy-compressed in the
// xerial framing that kafka-python and the Java client of old send (a
// magic header, then length-prefixed snappy blocks of 32 KiB input).
func xerialBatch(t testing.TB, recs []batch.Record) []byte {
	t.Helper()
	plain := mustBatch(t, recs...)
	body := plain[batch.HeaderSize:]
	out := []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1}
	for len(body) > 0 {
		n := min(len(body), 32<<10)
		block := snappy.Encode(nil, body[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		body = body[n:]
	}
	b := append(bytes.Clone(plain[:batch.HeaderSize]), out...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	attrs := binary.BigEndian.Uint16(b[21:])
	binary.BigEndian.PutUint16(b[21:], attrs&^7|uint16(batch.Snappy))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// TestXerialSnappy: a xerial-framed snappy batch (kafka-python's) is
// stored as sent and read back by franz-go and by internal/batch.
func TestXerialSnappy(t *testing.T) {
	ts := startServer(t)
	createTopic(t, ts, "xerial", 1)
	var recs []batch.Record
	for i := range 500 { // over 32 KiB of input: several xerial blocks
		recs = append(recs, batch.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: bytes.Repeat([]byte{byte('a' + i%26)}, 100)})
	}
	b := xerialBatch(t, recs)
	c := dialRaw(t, ts)
	c.send(produceReq("xerial", 0, -1, b), 9, 1)
	resp := kmsg.NewPtrProduceResponse()
	c.recv(resp, 9, 1)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce: error %d", code)
	}
	res, err := ts.b.Fetch(context.Background(), "xerial", 0, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Batches[batch.HeaderSize:], b[batch.HeaderSize:]) {
		t.Fatal("the stored batch differs from the one sent")
	}
	stored, err := batch.Records(res.Batches)
	if err != nil || len(stored) != len(recs) {
		t.Fatalf("internal/batch reads %d records: %v", len(stored), err)
	}
	got := consumeN(t, ts, "xerial", len(recs))
	for i, r := range got {
		if !bytes.Equal(r.Key, recs[i].Key) || !bytes.Equal(r.Value, recs[i].Value) {
			t.Fatalf("record %d: %q=%q", i, r.Key, r.Value)
		}
	}
}
