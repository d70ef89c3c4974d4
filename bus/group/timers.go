package group

import (
	"container/heap"
	"time"
)

// Timers: every deadline of every group (session expiry, a pending member
// id, the rebalance and leader-sync timeouts, the retention sweep) is an
// event on one heap, served by the coordinator's one timer goroutine. Events
// are never removed: re-arming or cancelling changes the token the owner
// keeps, and an event whose token no longer matches is stale and skipped.

type timerKind uint8

const (
	timerSession   timerKind = iota // m's session may have expired
	timerPending                    // pending member id of g may have expired
	timerRebalance                  // g's rebalance round is up
	timerSync                       // g's leader did not sync in time
	timerSweep                      // expire offsets, forget dead groups
)

type timerEvent struct {
	at   time.Time
	kind timerKind
	g    *group
	m    *member // timerSession
	id   string  // timerPending
	tok  uint64
}

type timerHeap []timerEvent

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEvent)) }
func (h *timerHeap) Pop() any {
	old := *h
	ev := old[len(old)-1]
	old[len(old)-1] = timerEvent{}
	*h = old[:len(old)-1]
	return ev
}

func (c *Coordinator) nextTokLocked() uint64 {
	c.tok++
	return c.tok
}

// armLocked schedules ev, waking the timer goroutine when ev is the new
// earliest event.
func (c *Coordinator) armLocked(ev timerEvent) {
	heap.Push(&c.timers, ev)
	if !c.timers[0].at.Before(ev.at) {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// runTimers is the coordinator's timer goroutine.
func (c *Coordinator) runTimers() {
	defer c.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		c.mu.Lock()
		now := c.now()
		sweep := false
		for len(c.timers) > 0 && !c.timers[0].at.After(now) {
			ev := heap.Pop(&c.timers).(timerEvent)
			if ev.kind == timerSweep {
				sweep = true
				continue
			}
			c.fireLocked(ev, now)
		}
		wait := time.Hour
		if len(c.timers) > 0 {
			wait = c.timers[0].at.Sub(now)
		}
		c.mu.Unlock()
		if sweep {
			// The sweep writes to the journal, so it runs unlocked; it arms
			// the next sweep itself.
			c.sweep()
			continue
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-c.wake:
		case <-c.done:
			return
		}
	}
}

// fireLocked dispatches one due event unless it is stale.
func (c *Coordinator) fireLocked(ev timerEvent, now time.Time) {
	g := ev.g
	if c.groups[g.name] != g {
		return
	}
	switch ev.kind {
	case timerSession:
		if !ev.m.removed && ev.m.timerTok == ev.tok {
			c.sessionTimerLocked(g, ev.m, now)
		}
	case timerPending:
		if tok, ok := g.pending[ev.id]; ok && tok == ev.tok {
			delete(g.pending, ev.id)
			c.tryCompleteJoinLocked(g)
		}
	case timerRebalance:
		if g.rebalanceTok == ev.tok && g.state == statePreparingRebalance {
			c.rebalanceTimerLocked(g, now)
		}
	case timerSync:
		if g.syncTok == ev.tok && g.state == stateCompletingRebalance {
			c.syncTimerLocked(g)
		}
	}
}
