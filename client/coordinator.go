package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/transport/wire"
)

// Group requests go to the group's coordinator, found with FindCoordinator
// and cached per group. A coordinator that answers NOT_COORDINATOR or
// COORDINATOR_NOT_AVAILABLE did not act on the request, so it is sent
// again to the coordinator found anew, until the request's deadline; a
// connection failure forgets the coordinator and is returned (the callers
// retry). A server without FindCoordinator (single node, older versions)
// coordinates every group itself: any node is used.

// groupRoundTrip is roundTrip for a request about group.
func (c *Client) groupRoundTrip(ctx context.Context, group string, req, resp wire.Message) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.requestTimeout)
		defer cancel()
	}
	backoff := c.cfg.retryBackoff
	for {
		r, err := c.coordinator(ctx, group)
		if err != nil {
			return err
		}
		actx, acancel := ctx, context.CancelFunc(func() {})
		if quickGroupRequest(req.API()) {
			actx, acancel = context.WithTimeout(ctx, groupStall)
		}
		_, err = c.exchange(actx, r, req, resp)
		acancel()
		code := int16(0)
		if err == nil {
			code = responseCode(resp)
		}
		switch {
		case err != nil && actx.Err() != nil && ctx.Err() == nil:
			// The coordinator is silent: it may be gone without closing
			// the connection. Find it again, through another node.
			c.cfg.logger.Debug("group coordinator does not answer; finding it again", "group", group,
				"coordinator", r)
			c.forgetCoordinator(group)
			if r.addr != "" {
				c.avoidForAny(r.addr)
			}
			c.requestRefresh() // its partitions may have moved too
			continue
		case errors.Is(err, ErrConnection):
			c.forgetCoordinator(group)
			return err
		case code == kerr.NotCoordinator.Code || code == kerr.CoordinatorNotAvailable.Code ||
			code == kerr.CoordinatorLoadInProgress.Code:
			c.forgetCoordinator(group)
			c.cfg.logger.Debug("group coordinator moved; finding it again", "group", group, "code", code)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return err // the last answer, with its error code
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		return err
	}
}

// groupStall is how long a group request that the coordinator answers at
// once (all but JoinGroup and SyncGroup, which wait for the rebalance) may
// go unanswered before the coordinator is presumed gone and found again.
// Those requests can be repeated safely.
const groupStall = 3 * time.Second

func quickGroupRequest(a wire.API) bool {
	switch a {
	case wire.APIHeartbeat, wire.APIOffsetCommit, wire.APIOffsetFetch, wire.APIDescribeGroup, wire.APIGroupOffsets:
		return true
	}
	return false
}

// coordinator returns the route to group's coordinator.
func (c *Client) coordinator(ctx context.Context, group string) (route, error) {
	c.mu.Lock()
	addr, ok := c.coord[group]
	c.mu.Unlock()
	if ok {
		if addr == "" {
			return anyNode, nil
		}
		return route{node: -1, addr: addr}, nil
	}
	var resp wire.FindCoordinatorResponse
	via, err := c.exchange(ctx, anyNode, &wire.FindCoordinatorRequest{Group: group}, &resp)
	var be *BrokerError
	switch {
	case err != nil && errors.Is(err, ErrProtocol) && errors.As(err, &be) &&
		(be.Err == kerr.UnsupportedVersion || be.Err == kerr.InvalidRequest):
		addr = "" // the server does not know FindCoordinator: it is the coordinator
	case err != nil:
		return anyNode, err
	default:
		if err := checkErr(resp.Err); err != nil {
			return anyNode, fmt.Errorf("client: find coordinator of group %s: %w", group, err)
		}
		if a, ok := c.meta.nodeAddr(resp.NodeID); ok {
			addr = a
		} else if resp.Addr != "" {
			addr = reachableAddr(resp.Addr, via)
		} else {
			addr = via
		}
	}
	c.mu.Lock()
	c.coord[group] = addr
	c.mu.Unlock()
	if addr == "" {
		return anyNode, nil
	}
	return route{node: -1, addr: addr}, nil
}

func (c *Client) forgetCoordinator(group string) {
	c.mu.Lock()
	delete(c.coord, group)
	c.mu.Unlock()
}

// responseCode returns the top-level error code of a group response.
func responseCode(m wire.Message) int16 {
	switch r := m.(type) {
	case *wire.SimpleResponse:
		return r.Code
	case *wire.JoinGroupResponse:
		return r.Code
	case *wire.SyncGroupResponse:
		return r.Code
	case *wire.LeaveGroupResponse:
		return r.Code
	case *wire.OffsetFetchResponse:
		return r.Code
	case *wire.DescribeGroupResponse:
		return r.Code
	case *wire.GroupOffsetsResponse:
		return r.Code
	}
	return 0
}
