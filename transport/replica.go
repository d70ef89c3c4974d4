package transport

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/transport/wire"
)

// SetClusterStatus makes ClusterInfo answers carry status() (the cluster
// metadata's view as JSON).
func (s *Server) SetClusterStatus(status func() []byte) { s.clusterStatus.Store(&status) }

// maxReplicaWait bounds a follower's long poll at the leader.
const maxReplicaWait = 5 * time.Second

// dispatchReplica serves the node-to-node replication requests.
func (cs *connState) dispatchReplica(req wire.Message) (wire.Message, bool, error) {
	b := cs.s.b
	switch r := req.(type) {
	case *wire.ReplicaFetchRequest:
		wait := min(time.Duration(max(r.MaxWaitMs, 0))*time.Millisecond, maxReplicaWait)
		res, err := b.ReplicaFetch(cs.ctx, bus.ReplicaFetchRequest{Topic: r.Topic, Partition: r.Partition,
			ReplicaID: r.ReplicaID, LeaderEpoch: r.LeaderEpoch, Offset: r.Offset, MaxBytes: r.MaxBytes, MaxWait: wait})
		return &wire.ReplicaFetchResponse{Err: errCode(err), HighWatermark: res.HighWatermark,
			LogStartOffset: res.LogStartOffset, EndOffset: res.EndOffset, Batches: res.Batches}, true, err
	case *wire.FindCoordinatorRequest:
		id := b.GroupCoordinator(r.Group)
		resp := &wire.FindCoordinatorResponse{NodeID: id}
		for _, n := range cs.s.nodes() {
			if n.NodeID == id {
				resp.Addr = n.Addrs["quic"]
			}
		}
		return resp, true, nil
	case *wire.LeaderEpochEndRequest:
		epoch, end, err := b.LeaderEpochEnd(r.Topic, r.Partition, r.Epoch)
		return &wire.LeaderEpochEndResponse{Err: errCode(err), Epoch: epoch, EndOffset: end}, true, err
	}
	return nil, false, nil
}

// notCoordinator answers a group request sent to a node that does not
// coordinate the group with NOT_COORDINATOR (the client finds the
// coordinator again).
func (cs *connState) notCoordinator(req wire.Message) (wire.Message, error) {
	g, ok := wire.GroupOf(req)
	if !ok {
		return nil, nil
	}
	b := cs.s.b
	id := b.GroupCoordinator(g)
	if id == b.NodeID() {
		return nil, nil
	}
	err := fmt.Errorf("%w: group %q is coordinated by node %d", kerr.NotCoordinator, g, id)
	resp := wire.NewResponse(req.API())
	if s, ok := resp.(interface{ Set(int16, string) }); ok {
		s.Set(kerr.NotCoordinator.Code, err.Error())
		return resp, err
	}
	return nil, protoErr(wire.StreamCodeUnsupported, kerr.NotCoordinator, err.Error())
}
