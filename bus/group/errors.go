package group

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Errors of this package beyond the kerr table. Every error the Coordinator
// returns wraps a *kerr.Error (see Code), except ctx.Err() from a Join or
// Sync whose context ended.
var (
	// ErrClosed is returned by calls on a closed Coordinator; it wraps
	// kerr.CoordinatorNotAvailable, so a client retries elsewhere or later.
	ErrClosed = fmt.Errorf("group: coordinator closed: %w", kerr.CoordinatorNotAvailable)
)

// Code returns the Kafka wire error code for err: 0 for nil, the code of
// the *kerr.Error that err wraps, kerr.RequestTimedOut for an ended context
// and kerr.UnknownServerError for anything else.
//
//	_, err := c.Sync(ctx, req)
//	resp.ErrorCode = group.Code(err)
func Code(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}
