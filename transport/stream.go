package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/metrics"
	"github.com/wispbus/wisp/transport/wire"
)

// writeTimeout bounds writing one frame to a client that stopped reading:
// past it the stream is abandoned rather than holding a goroutine forever.
const writeTimeout = 30 * time.Second

// firstFrameTimeout bounds how long a stream may take to deliver its first
// frame. A client writes it as soon as it opens the stream (the server only
// learns of a stream from its first bytes), so a stream still short of a
// whole frame after this is a slowloris: a header trickled a byte at a
// time, or one claiming 16 MiB and sending none of it. Without the bound
// such streams hold a goroutine each for as long as the client keeps the
// connection alive. Later frames are not bounded: a produce stream is idle
// between batches. Generous, so a large first frame over a slow link
// still gets through.
const firstFrameTimeout = time.Minute

// serveStream reads the stream's first frame and serves the stream
// according to it: a produce stream, a fetch session, or a sequence of
// one-shot requests answered in order until the client closes its side.
func (cs *connState) serveStream(str *quic.Stream) {
	max := cs.s.cfg.MaxFrameBytes
	_ = str.SetReadDeadline(time.Now().Add(firstFrameTimeout))
	f, err := wire.ReadFrame(str, nil, max)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = protoErr(wire.StreamCodeMalformed, kerr.RequestTimedOut,
				"no whole first frame within "+firstFrameTimeout.String())
		}
		cs.failRead(str, err)
		return
	}
	_ = str.SetReadDeadline(time.Time{})
	switch f.API {
	case wire.APIProduce:
		cs.produceStream(str, f)
		return
	case wire.APIFetchSession:
		cs.fetchSession(str, f)
		return
	case wire.APIFunctionLogs:
		cs.functionLogs(str, f)
		return
	}
	for {
		resp, perr := cs.handle(f)
		if perr != nil {
			cs.failStream(str, perr)
			return
		}
		if err := writeFrame(str, wire.AppendFrame(nil, resp)); err != nil {
			str.CancelRead(quic.StreamErrorCode(wire.StreamCodeCanceled))
			return
		}
		if f, err = wire.ReadFrame(str, nil, max); err != nil {
			cs.failRead(str, err)
			return
		}
		if f.API == wire.APIProduce || f.API == wire.APIFetchSession || f.API == wire.APIFunctionLogs {
			cs.failStream(str, protoErr(wire.StreamCodeUnsupported, kerr.InvalidRequest,
				f.API.String()+" must be the first frame of its stream"))
			return
		}
	}
}

func writeFrame(str *quic.Stream, b []byte) error {
	_ = str.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := str.Write(b)
	return err
}

// protocolError is a failure of the stream itself (not of the request):
// it is answered with an ErrorFrame and a stream reset.
type protocolError struct {
	streamCode uint64
	kerr       *kerr.Error
	msg        string
}

func (e *protocolError) Error() string { return e.msg }

func protoErr(code uint64, ke *kerr.Error, msg string) *protocolError {
	return &protocolError{streamCode: code, kerr: ke, msg: msg}
}

// failRead ends a stream whose next frame could not be read.
func (cs *connState) failRead(str *quic.Stream, err error) {
	var pe *protocolError
	switch {
	case errors.As(err, &pe):
		cs.failStream(str, pe)
	case errors.Is(err, io.EOF):
		// The client closed its side after its last request: done.
		_ = str.Close()
	case errors.Is(err, wire.ErrFrameTooLarge):
		cs.failStream(str, protoErr(wire.StreamCodeTooLarge, kerr.MessageTooLarge, err.Error()))
	case errors.Is(err, wire.ErrMalformed), errors.Is(err, io.ErrUnexpectedEOF):
		cs.failStream(str, protoErr(wire.StreamCodeMalformed, kerr.InvalidRequest, err.Error()))
	default:
		// The client reset the stream or the connection is gone.
		str.CancelRead(quic.StreamErrorCode(wire.StreamCodeCanceled))
		str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeCanceled))
	}
}

// failStream tells the client why its stream is abandoned, with an
// ErrorFrame when the stream can still carry one, then closes the send side
// after it and stops reading with the error's stream code. Only the stream
// ends; the connection carries on.
func (cs *connState) failStream(str *quic.Stream, err error) {
	var pe *protocolError
	if !errors.As(err, &pe) {
		pe = protoErr(wire.StreamCodeInternal, kerr.UnknownServerError, err.Error())
	}
	cs.s.log.Debug("quic stream failed", "remote", cs.host, "stream", str.StreamID(), "code", pe.streamCode, "err", pe.msg)
	metrics.ObserveRequest("quic", "Error", time.Now(), pe)
	frame := wire.AppendFrame(nil, &wire.ErrorFrame{Err: wire.Err{Code: pe.kerr.Code, Message: pe.msg}, StreamCode: pe.streamCode})
	str.CancelRead(quic.StreamErrorCode(pe.streamCode))
	_ = str.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, werr := str.Write(frame); werr == nil {
		_ = str.Close()
	} else {
		str.CancelWrite(quic.StreamErrorCode(pe.streamCode))
	}
}

// errCode maps a broker error to its wire error: the kerr code it wraps
// (with the full message), RequestTimedOut for an ended context,
// LeaderNotAvailable for a closed broker and UnknownServerError otherwise.
func errCode(err error) wire.Err {
	if err == nil {
		return wire.Err{}
	}
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return wire.Err{Code: ke.Code, Message: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return wire.Err{Code: kerr.RequestTimedOut.Code, Message: err.Error()}
	case errors.Is(err, bus.ErrClosed):
		return wire.Err{Code: kerr.LeaderNotAvailable.Code, Message: err.Error()}
	}
	return wire.Err{Code: kerr.UnknownServerError.Code, Message: err.Error()}
}

// decodeRequest decodes a frame as the request of its API.
func decodeRequest(f wire.Frame) (wire.Message, error) {
	m := wire.NewRequest(f.API)
	if m == nil {
		return nil, protoErr(wire.StreamCodeUnsupported, kerr.UnsupportedVersion, "unknown API "+f.API.String())
	}
	if f.Version != wire.Version {
		return nil, protoErr(wire.StreamCodeUnsupported, kerr.UnsupportedVersion,
			f.API.String()+": unsupported message version")
	}
	if err := wire.DecodePayload(f.Payload, m); err != nil {
		return nil, protoErr(wire.StreamCodeMalformed, kerr.InvalidRequest, err.Error())
	}
	return m, nil
}
