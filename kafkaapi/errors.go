package kafkaapi

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	wlog "github.com/wispbus/wisp/bus/log"
)

// errUnsupportedVersion is reported to the metrics for an ApiVersions
// request of a version newer than the server speaks.
var errUnsupportedVersion = errors.New("kafkaapi: unsupported ApiVersions version")

// errTransactions is the error every transactional request gets: wisp has
// no transaction coordinator. TRANSACTIONAL_ID_AUTHORIZATION_FAILED is not
// retriable, so clients fail fast with it instead of retrying forever (a
// COORDINATOR_NOT_AVAILABLE would make them retry until their timeout).
var errTransactions = errors.New("kafkaapi: transactions are not supported by wisp (idempotent producers are)")

// errCode maps an error of the bus to a Kafka error code: the code of the
// kerr.Error it wraps, REQUEST_TIMED_OUT for an ended context,
// NOT_LEADER_OR_FOLLOWER while the broker shuts down (clients refresh
// metadata and retry) and UNKNOWN_SERVER_ERROR for anything else.
func errCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, bus.ErrClosed), errors.Is(err, wlog.ErrClosed):
		return kerr.NotLeaderForPartition.Code
	}
	return kerr.UnknownServerError.Code
}

// errMessage is err's text for the ErrorMessage fields of responses.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// firstErr remembers the first failure of a request with many parts
// (partitions, groups, topics) for the request metrics.
type firstErr struct{ err error }

func (f *firstErr) code(c int16) int16 {
	if c != 0 && f.err == nil {
		f.err = kerr.ErrorForCode(c)
	}
	return c
}

func (f *firstErr) add(err error) int16 {
	if err != nil && f.err == nil {
		f.err = err
	}
	return errCode(err)
}
