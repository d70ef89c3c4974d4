package client

import (
	"fmt"
	"runtime"
	"strings"
)

func allStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// debugState describes the producer's queues, for failing tests.
func (p *producer) debugState() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var sb strings.Builder
	fmt.Fprintf(&sb, "bufRecs=%d bufBytes=%d flushing=%d streams=%d opening=%v pidOK=%v closed=%v\n",
		p.bufRecs, p.bufBytes, p.flushing, len(p.streams), p.opening, p.pidOK, p.closed)
	for node, s := range p.streams {
		fmt.Fprintf(&sb, "stream to node %d pending=%d dead=%v\n", node, len(s.pending), s.dead)
	}
	for name, t := range p.topics {
		fmt.Fprintf(&sb, "topic %s parts=%d pending=%d loading=%v\n", name, len(t.parts), len(t.pending), t.loading)
	}
	for _, pp := range p.parts {
		cur := 0
		if pp.cur != nil {
			cur = len(pp.cur.recs)
		}
		fmt.Fprintf(&sb, "part %s/%d leader=%d cur=%d ready=%d inflight=%d requeue=%d retrying=%v needPID=%v backoff=%v\n",
			pp.topic, pp.partition, pp.leader, cur, len(pp.ready), len(pp.inflight), len(pp.requeue), pp.retrying, pp.needPID, pp.backoff)
		for _, b := range pp.ready {
			fmt.Fprintf(&sb, "  ready corr=%d seq=%d n=%d attempts=%d err=%v encoded=%v\n", b.corr, b.baseSeq, len(b.recs), b.attempts, b.lastErr, b.encoded)
		}
		for _, b := range pp.inflight {
			fmt.Fprintf(&sb, "  inflight corr=%d seq=%d n=%d attempts=%d err=%v\n", b.corr, b.baseSeq, len(b.recs), b.attempts, b.lastErr)
		}
	}
	p.cbMu.Lock()
	fmt.Fprintf(&sb, "callback queue=%d\n", len(p.cbQueue))
	p.cbMu.Unlock()
	return sb.String()
}
