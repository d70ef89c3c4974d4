package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Errors of the client itself. Errors the broker returns are *BrokerError
// values wrapping a kerr error.
var (
	// ErrClosed is returned by calls on a closed Client or Consumer, and
	// to the callbacks of records still buffered when the Client closed.
	ErrClosed = errors.New("client: closed")
	// ErrRecordTooLarge means one record does not fit BatchMaxBytes.
	ErrRecordTooLarge = errors.New("client: record larger than BatchMaxBytes")
	// ErrNoTopic means a record or subscription has an empty topic.
	ErrNoTopic = errors.New("client: empty topic")
	// ErrNotInGroup means a group call (Commit of a group consumer) was made
	// while the consumer holds no generation, for example mid-rebalance.
	ErrNotInGroup = errors.New("client: not a member of the group right now")
	// ErrConnection means the connection to the server failed or dropped;
	// it wraps the underlying QUIC error.
	ErrConnection = errors.New("client: connection failed")
	// ErrProtocol means the server sent something this client cannot
	// decode; the stream was abandoned.
	ErrProtocol = errors.New("client: protocol error")
)

// BrokerError is an error answered by the broker: a Kafka error code (see
// kerr) with the broker's message. errors.Is(err, kerr.X) works on it.
type BrokerError struct {
	Err     *kerr.Error // never nil
	Message string      // the broker's explanation, may be empty
}

func (e *BrokerError) Error() string {
	if e.Message == "" {
		return "client: broker: " + e.Err.Error()
	}
	return fmt.Sprintf("client: broker: %s", e.Message)
}

// Unwrap returns the kerr error.
func (e *BrokerError) Unwrap() error { return e.Err }

// brokerError maps a wire error code and message to an error, nil for 0.
func brokerError(code int16, msg string) error {
	if code == 0 {
		return nil
	}
	ke, ok := kerr.ErrorForCode(code).(*kerr.Error)
	if !ok {
		ke = kerr.UnknownServerError
	}
	return &BrokerError{Err: ke, Message: msg}
}

// IsRetryable reports whether err is transient: a dropped connection or a
// broker error Kafka marks retriable (leader moving, timeouts, rebalance in
// progress...). Context errors are not retryable.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, ErrConnection) {
		return true
	}
	var be *BrokerError
	if errors.As(err, &be) {
		return be.Err.Retriable
	}
	return false
}
