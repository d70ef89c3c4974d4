// Package wire is wisp's native protocol on the wire: frames, API keys,
// error codes and every request and response message, shared by the QUIC
// server (package transport) and the Go client (package client). It has no
// network code. docs/protocol.md describes the same thing byte by byte.
//
// A frame is
//
//	u32 length   bytes after this field (3 + len(payload)), at most the frame limit
//	u8  version  the message version, 1 for every message of wisp/1
//	u16 api      the API key (API)
//	... payload  the message, encoded as its Codec method says
//
// All integers are big-endian. The message encoding is written by hand: one
// method per message (codec) drives both encoding and decoding, so the two
// cannot disagree, and decoders check every length against the bytes left
// before allocating, so a hostile frame cannot make them allocate more than
// its own size.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/wispbus/wisp/internal/growbuf"
)

// ALPN is the TLS application protocol of wisp's native protocol.
const ALPN = "wisp/1"

// Version is the message version this package encodes and decodes.
const Version uint8 = 1

// FrameHeaderSize is the size of length + version + api.
const FrameHeaderSize = 7

// DefaultMaxFrame is the default frame limit (16 MiB), length field included.
const DefaultMaxFrame = 16 << 20

// API is an API key: what a frame's payload is.
type API uint16

// The API keys of wisp/1. Requests and their responses share the key.
const (
	APIProduce        API = 0x0001
	APIFetch          API = 0x0002
	APIFetchSession   API = 0x0003 // client -> server, first frame of a fetch session
	APIFetchPush      API = 0x0004 // server -> client, pushed on a fetch session
	APIListOffsets    API = 0x0005
	APIMetadata       API = 0x0006
	APICreateTopic    API = 0x0007
	APIDeleteTopic    API = 0x0008
	APIAlterConfigs   API = 0x0009
	APIAddPartitions  API = 0x000A
	APIInitProducerID API = 0x000B
	APIJoinGroup      API = 0x000C
	APISyncGroup      API = 0x000D
	APIHeartbeat      API = 0x000E
	APILeaveGroup     API = 0x000F
	APIOffsetCommit   API = 0x0010
	APIOffsetFetch    API = 0x0011
	APIListGroups     API = 0x0012
	APIDescribeGroup  API = 0x0013
	APIGroupOffsets   API = 0x0014
	APIClusterInfo    API = 0x0015
	APIError          API = 0xFFFF // server -> client: the stream failed
)

var apiNames = map[API]string{
	APIProduce: "Produce", APIFetch: "Fetch", APIFetchSession: "FetchSession", APIFetchPush: "FetchPush",
	APIListOffsets: "ListOffsets", APIMetadata: "Metadata", APICreateTopic: "CreateTopic",
	APIDeleteTopic: "DeleteTopic", APIAlterConfigs: "AlterConfigs", APIAddPartitions: "AddPartitions",
	APIInitProducerID: "InitProducerID", APIJoinGroup: "JoinGroup", APISyncGroup: "SyncGroup",
	APIHeartbeat: "Heartbeat", APILeaveGroup: "LeaveGroup", APIOffsetCommit: "OffsetCommit",
	APIOffsetFetch: "OffsetFetch", APIListGroups: "ListGroups", APIDescribeGroup: "DescribeGroup",
	APIGroupOffsets: "GroupOffsets", APIClusterInfo: "ClusterInfo", APIError: "Error",
	APIFunctionDeploy: "FunctionDeploy", APIFunctionList: "FunctionList", APIFunctionDescribe: "FunctionDescribe",
	APIFunctionLogs: "FunctionLogs", APIFunctionPause: "FunctionPause", APIFunctionResume: "FunctionResume",
	APIFunctionDelete: "FunctionDelete",
}

// String is the API's name, for logs and metrics.
func (a API) String() string {
	if n, ok := apiNames[a]; ok {
		return n
	}
	return fmt.Sprintf("API(0x%04x)", uint16(a))
}

// Known reports whether a is an API key of wisp/1.
func (a API) Known() bool { _, ok := apiNames[a]; return ok }

// QUIC application error codes. Stream codes are sent with
// RESET_STREAM/STOP_SENDING when a stream is abandoned; connection codes
// with CONNECTION_CLOSE.
const (
	StreamCodeOK          uint64 = 0x0 // not an error
	StreamCodeMalformed   uint64 = 0x1 // a frame could not be decoded
	StreamCodeTooLarge    uint64 = 0x2 // a frame's length is over the limit
	StreamCodeUnsupported uint64 = 0x3 // unknown API key or version
	StreamCodeInternal    uint64 = 0x4 // the server failed unexpectedly
	StreamCodeShutdown    uint64 = 0x5 // the server is closing
	StreamCodeCanceled    uint64 = 0x6 // the client gave up on the stream

	ConnCodeOK       uint64 = 0x0  // normal close
	ConnCodeShutdown uint64 = 0x10 // the server is closing
)

// Errors of the frame layer.
var (
	// ErrFrameTooLarge means a frame's length field is over the limit.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrMalformed means a frame or message could not be decoded.
	ErrMalformed = errors.New("wire: malformed frame")
)

// Frame is one decoded frame header with its payload.
type Frame struct {
	Version uint8
	API     API
	Payload []byte
}

// ReadFrame reads one frame from r. The payload is read into buf when it
// fits (buf is reused by the caller) or into a new slice. It returns
// io.EOF at a clean end of stream (no byte of a new frame read), and
// ErrFrameTooLarge (with the frame unread) when the length field is over
// max, or under 3.
func ReadFrame(r io.Reader, buf []byte, max int) (Frame, error) {
	var hdr [FrameHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if int64(n)+4 > int64(max) {
		return Frame{}, fmt.Errorf("%w: %d bytes (limit %d)", ErrFrameTooLarge, int64(n)+4, max)
	}
	if n < 3 {
		return Frame{}, fmt.Errorf("%w: length %d", ErrMalformed, n)
	}
	if _, err := io.ReadFull(r, hdr[4:]); err != nil {
		return Frame{}, unexpected(err)
	}
	size := int(n) - 3
	var p []byte
	var err error
	if cap(buf) >= size {
		p = buf[:size]
		_, err = io.ReadFull(r, p)
	} else {
		// Grown as the bytes arrive: the length is only a claim
		// (growbuf explains the attack).
		p, err = growbuf.ReadFull(r, size)
	}
	if err != nil {
		return Frame{}, unexpected(err)
	}
	return Frame{Version: hdr[4], API: API(binary.BigEndian.Uint16(hdr[5:])), Payload: p}, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendFrame appends m as a whole frame to dst.
func AppendFrame(dst []byte, m Message) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, Version, 0, 0)
	binary.BigEndian.PutUint16(dst[start+5:], uint16(m.API()))
	c := coder{enc: true, buf: dst}
	m.Codec(&c)
	dst = c.buf
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// Decode decodes a frame's payload into m, which must be the message for the
// frame's API. Trailing bytes are an error. Byte fields of m alias payload.
func Decode(f Frame, m Message) error {
	if f.Version != Version {
		return fmt.Errorf("%w: %s version %d (want %d)", ErrUnsupported, f.API, f.Version, Version)
	}
	if f.API != m.API() {
		return fmt.Errorf("%w: frame is %s, expected %s", ErrMalformed, f.API, m.API())
	}
	return DecodePayload(f.Payload, m)
}

// DecodePayload decodes a payload into m, rejecting trailing bytes.
func DecodePayload(p []byte, m Message) error {
	c := coder{buf: p}
	m.Codec(&c)
	if c.err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, m.API(), c.err)
	}
	if len(c.buf) != 0 {
		return fmt.Errorf("%w: %s: %d trailing bytes", ErrMalformed, m.API(), len(c.buf))
	}
	return nil
}

// ErrUnsupported means an unknown API key or message version.
var ErrUnsupported = errors.New("wire: unsupported API or version")

// AppendProduceHeader appends the frame of m without its Batches, sized
// as if Batches held n bytes: the caller writes those n bytes right after,
// so a large batch is never copied into a frame buffer. Batches is the
// last field of a ProduceRequest, which makes this possible.
func AppendProduceHeader(dst []byte, m *ProduceRequest, n int) []byte {
	start := len(dst)
	saved := m.Batches
	m.Batches = []byte{}
	dst = AppendFrame(dst, m)
	m.Batches = saved
	binary.BigEndian.PutUint32(dst[len(dst)-4:], uint32(n))
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4+n))
	return dst
}
