package client

import "context"

// Produce buffers rec for sending and returns; promise (which may be nil)
// is called once with rec (Partition and Offset filled in) and nil, or
// with the error that made the record fail. Callbacks run on one goroutine
// of the client, in the order records of a partition were written: keep
// them short, and never call Flush or Close from them.
//
// Produce blocks while the buffer is full (MaxBufferedRecords,
// MaxBufferedBytes) until space frees up or ctx ends; if ctx ends first,
// promise gets ctx.Err() and the record is not sent. ctx does not cancel a
// record once buffered.
//
// rec, its Key, Value and Headers belong to the client until promise is
// called (they may be encoded later, on another goroutine): do not modify
// or reuse them before.
//
// Records of one partition are written in the order Produce was called;
// with idempotence (the default) a retry after a dropped connection never
// writes a record twice.
func (c *Client) Produce(ctx context.Context, rec *Record, promise func(*Record, error)) {
	c.produce(ctx, rec, promise)
}

// ProduceSync produces recs and waits until every one is written or has
// failed. It fills in Partition and Offset and returns the error (all
// errors joined when several failed). If ctx ends first it returns
// ctx.Err(); records already buffered may still be written.
func (c *Client) ProduceSync(ctx context.Context, recs ...*Record) error {
	return c.produceSync(ctx, recs...)
}

// Flush sends every buffered record at once (lingering stops) and waits
// until all of them are acknowledged or failed, or until ctx ends.
func (c *Client) Flush(ctx context.Context) error { return c.flush(ctx) }

// BufferedRecords is the number of records produced and not yet answered.
func (c *Client) BufferedRecords() int { return c.bufferedRecords() }
