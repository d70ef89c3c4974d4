package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/growbuf"
)

// Forwarding protocol. A node that is not the controller sends a write to
// the controller on a new stream of the cluster ALPN: the kind byte
// streamControl, then one frame (4-byte big-endian length, JSON request);
// the controller answers one frame (JSON response) and both sides close.
// The response carries the log index of the committed command, and the
// caller waits until its own FSM has applied that index.

// maxControlFrame bounds one control frame (a function module of up to
// MaxModuleBytes travels base64-encoded in JSON).
const maxControlFrame = 4*MaxModuleBytes/3 + 1<<20

// request is a metadata write as forwarded to the controller.
type request struct {
	Op   string `json:"op"`
	From int32  `json:"from"` // the requesting node

	Spec        *bus.TopicSpec    `json:"spec,omitempty"`
	Name        string            `json:"name,omitempty"`
	Configs     map[string]string `json:"configs,omitempty"`
	Incremental bool              `json:"incremental,omitempty"`
	Total       int32             `json:"total,omitempty"`
	Partition   int32             `json:"partition,omitempty"`
	LeaderEpoch int32             `json:"leader_epoch,omitempty"`
	ISR         []int32           `json:"isr,omitempty"`
	N           int64             `json:"n,omitempty"`
	Node        int32             `json:"node,omitempty"`
	Function    *Function         `json:"function,omitempty"`
	Module      []byte            `json:"module,omitempty"`
}

// response is the controller's answer.
type response struct {
	Index uint64 `json:"index,omitempty"`
	First int64  `json:"first,omitempty"`
	// Error: Code is a Kafka error code (0: none), Sentinel names one of
	// this package's errors, Msg is the full text.
	Code          int16  `json:"code,omitempty"`
	Sentinel      string `json:"sentinel,omitempty"`
	NotController bool   `json:"not_controller,omitempty"`
	Msg           string `json:"msg,omitempty"`
}

// remoteError is an error that crossed from the controller: its text is
// the original's, and errors.Is finds the kerr or sentinel error under it.
type remoteError struct {
	msg   string
	under error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.under }

func encodeError(r *response, err error) {
	if err == nil {
		return
	}
	r.Msg = err.Error()
	if errors.Is(err, errNotController) {
		r.NotController = true
		return
	}
	for name, s := range sentinels {
		if errors.Is(err, s) {
			r.Sentinel = name
			return
		}
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		r.Code = ke.Code
		return
	}
	r.Code = kerr.UnknownServerError.Code
}

func decodeError(r response) error {
	switch {
	case r.NotController:
		return &remoteError{msg: r.Msg, under: errNotController}
	case r.Sentinel != "":
		if s, ok := sentinels[r.Sentinel]; ok {
			return &remoteError{msg: r.Msg, under: s}
		}
		return errors.New(r.Msg)
	case r.Code != 0:
		return &remoteError{msg: r.Msg, under: kerr.ErrorForCode(r.Code)}
	case r.Msg != "":
		return errors.New(r.Msg)
	}
	return nil
}

func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b)+4 > maxControlFrame {
		return fmt.Errorf("cluster: control frame of %d bytes too large", len(b))
	}
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	_, err = w.Write(buf)
	return err
}

func readFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxControlFrame {
		return fmt.Errorf("cluster: control frame of %d bytes too large", n)
	}
	// Grown as the bytes arrive: n is only a claim (see growbuf).
	b, err := growbuf.ReadFull(r, int(n))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// forward sends req to the controller at addr and returns its response.
func (n *Node) forward(ctx context.Context, addr string, req request) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sc, err := n.peers.open(ctx, addr, streamControl)
	if err != nil {
		return response{}, err
	}
	defer sc.Close()
	dl, _ := ctx.Deadline()
	_ = sc.SetDeadline(dl)
	if err := writeFrame(sc, req); err != nil {
		return response{}, fmt.Errorf("cluster: forward to %s: %w", addr, err)
	}
	var resp response
	if err := readFrame(sc, &resp); err != nil {
		return response{}, fmt.Errorf("cluster: forward to %s: %w", addr, err)
	}
	return resp, nil
}

// serveControl answers one forwarded request.
func (n *Node) serveControl(ctx context.Context, sc *streamConn) {
	defer sc.Close()
	_ = sc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var req request
	if err := readFrame(sc, &req); err != nil {
		n.log.Debug("cluster: bad control request", "remote", sc.RemoteAddr().String(), "err", err)
		return
	}
	_ = sc.SetReadDeadline(time.Time{})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	idx, first, err := n.handle(ctx, req)
	resp := response{Index: idx, First: first}
	encodeError(&resp, err)
	_ = sc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := writeFrame(sc, resp); err != nil {
		n.log.Debug("cluster: control response failed", "remote", sc.RemoteAddr().String(), "err", err)
	}
}
