package transport

import (
	"context"
	"sync"
	"time"
)

// reqCtx is a produce request's timeout: a context that ends at deadline
// or with its parent, but arms no timer and registers nothing with the
// parent until someone asks for Done.
//
// Why: most produces never block (acks=leader on a flush=os partition
// returns as soon as the append is done) and never look at their context,
// yet context.WithTimeout costs a timer, a registration in the parent's
// child map and their removal on every request: ~4 µs of CPU on the sync
// produce path, about 3% of it. Which produces can block (flush=always,
// acks=all on a replicated partition, a retry waiting for replicas) is
// the bus's business and can change with a topic's configuration, so the
// transport cannot simply skip the timeout; arming it on first use keeps
// the timeout wherever it matters.
//
// Err without a prior Done compares the clock with the deadline, so it
// reports expiry as WithTimeout would; once non-nil, the error is kept,
// and a later Done returns a closed channel.
type reqCtx struct {
	parent   context.Context
	deadline time.Time

	mu    sync.Mutex
	done  chan struct{} // made by the first Done
	err   error         // set once; done is closed when both are set
	timer *time.Timer
	stop  func() bool // unregisters from parent
}

func newReqCtx(parent context.Context, timeout time.Duration) *reqCtx {
	return &reqCtx{parent: parent, deadline: time.Now().Add(timeout)}
}

func (c *reqCtx) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *reqCtx) Value(key any) any { return c.parent.Value(key) }

func (c *reqCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	c.done = make(chan struct{})
	if c.expiredLocked() != nil {
		close(c.done)
		return c.done
	}
	c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.end(context.DeadlineExceeded) })
	c.stop = context.AfterFunc(c.parent, func() { c.end(c.parent.Err()) })
	return c.done
}

func (c *reqCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.err // armed: end sets it
	}
	return c.expiredLocked()
}

// expiredLocked records and returns the error once the parent ended or
// the deadline passed. c.mu must be held.
func (c *reqCtx) expiredLocked() error {
	if c.err != nil {
		return c.err
	}
	if err := c.parent.Err(); err != nil {
		c.err = err
	} else if !time.Now().Before(c.deadline) {
		c.err = context.DeadlineExceeded
	}
	return c.err
}

// end closes done with err unless it was closed already. Called by the
// timer or the parent's AfterFunc, so only after Done armed them.
func (c *reqCtx) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
		close(c.done)
	}
}

// release stops the timer and the parent registration, if armed; the
// request is over. A callback already running only closes done.
func (c *reqCtx) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.stop()
	}
}
