package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
)

// ErrClosed is returned by Start on a closed Server.
var ErrClosed = errors.New("httpapi: server closed")

// Error codes of the JSON error body {"error_code": .., "message": ..}. As in
// Confluent REST Proxy, the HTTP status is the first three digits of the
// code (40401 is sent with 404). The table is in the package documentation.
const (
	CodeBadJSON           = 40001 // the body or an NDJSON line is not valid JSON
	CodeBadParam          = 40002 // a query or path parameter is malformed
	CodeTopicNotFound     = 40401 // unknown topic (and auto-creation is off)
	CodePartitionNotFound = 40402 // the topic has no such partition
	CodeTopicExists       = 40901 // POST /v1/topics of an existing topic
	CodeTooLarge          = 41301 // body (or NDJSON line, or record) over the limit
	CodeUnsupportedType   = 41501 // Content-Type not accepted by the endpoint
	CodeOffsetOutOfRange  = 41601 // fetch offset outside [log start, log end]
	CodeInvalidRecord     = 42201 // well-formed JSON that is not a valid record
	CodeInvalidTopic      = 42202 // invalid topic name, partition count or config
	CodeInternal          = 50001 // unexpected server error
	CodeBroker            = 50002 // non-retriable broker error (REST Proxy KAFKA_ERROR)
	CodeRetriable         = 50003 // retriable broker error: retry the request
	CodeUnavailable       = 50301 // broker closed or server shutting down
)

// Error is an API error: the JSON body {"error_code":..,"message":..} and
// the HTTP status derived from the code. Handlers mounted with Server.Handle
// can answer errors the same way with WriteError.
type Error struct {
	Code    int    `json:"error_code"`
	Message string `json:"message"`
	err     error
}

func (e *Error) Error() string { return fmt.Sprintf("httpapi: %d: %s", e.Code, e.Message) }

// Unwrap returns the underlying cause, if any (e.g. a kerr value).
func (e *Error) Unwrap() error { return e.err }

// Status is the HTTP status for the error: the first three digits of Code.
func (e *Error) Status() int {
	s := e.Code
	for s >= 1000 {
		s /= 10
	}
	if s < 100 || s > 599 {
		return http.StatusInternalServerError
	}
	return s
}

func errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WriteError writes err as a JSON error body with its status. Errors that
// are not *Error are mapped from the bus's kerr values (see the package
// documentation), anything else is a 500.
func WriteError(w http.ResponseWriter, err error) {
	e := toError(err)
	writeJSON(w, e.Status(), e)
}

// toError maps any error to an *Error.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &Error{Code: CodeTooLarge, Message: fmt.Sprintf("request body larger than %d bytes", mbe.Limit), err: err}
	}
	code := CodeInternal
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		code = CodeTopicNotFound
	case errors.Is(err, kerr.TopicAlreadyExists):
		code = CodeTopicExists
	case errors.Is(err, kerr.InvalidTopicException), errors.Is(err, kerr.InvalidPartitions),
		errors.Is(err, kerr.InvalidReplicationFactor), errors.Is(err, kerr.InvalidConfig):
		code = CodeInvalidTopic
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		code = CodeTooLarge
	case errors.Is(err, kerr.CorruptMessage), errors.Is(err, kerr.InvalidRecord), errors.Is(err, kerr.InvalidTimestamp):
		code = CodeInvalidRecord
	case errors.Is(err, kerr.OffsetOutOfRange):
		code = CodeOffsetOutOfRange
	case errors.Is(err, bus.ErrClosed):
		code = CodeUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = CodeRetriable
	default:
		var ke *kerr.Error
		if errors.As(err, &ke) {
			code = CodeBroker
			if ke.Retriable {
				code = CodeRetriable
			}
		}
	}
	return &Error{Code: code, Message: err.Error(), err: err}
}

// writeJSON writes v with a Content-Length, so that a client can read the
// whole response even while the handler goes on (acks=0).
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error_code":50001,"message":"encoding the response failed"}`)
	}
	body = append(body, '\n')
	h := w.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
