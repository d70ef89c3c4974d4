package server

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/bus/group"
	"github.com/wispbus/wisp/cluster"
	"github.com/wispbus/wisp/functions"
	"github.com/wispbus/wisp/transport"
)

// fnCluster is the cluster as the function manager sees it
// (functions.Cluster). The manager opens before the cluster metadata and
// the peer links exist, so those are set once they do; until then calls
// fail with retriable errors.
type fnCluster struct {
	b     *bus.Broker
	node  atomic.Pointer[cluster.Node]
	peers atomic.Pointer[transport.Peers]
}

var _ functions.Cluster = (*fnCluster)(nil)

// leader is the node leading a partition as this node's metadata says.
func (c *fnCluster) leader(topic string, p int32) (int32, error) {
	info, err := c.b.Topic(topic)
	if err != nil {
		return -1, err
	}
	if p < 0 || int(p) >= len(info.Partitions) {
		return -1, fmt.Errorf("%w: %s/%d", kerr.UnknownTopicOrPartition, topic, p)
	}
	return info.Partitions[p].Leader, nil
}

// Leads is functions.Config.Leads: workers run where the input partition's
// leader is.
func (c *fnCluster) Leads(topic string, p int32) bool {
	l, err := c.leader(topic, p)
	return err == nil && l == c.b.NodeID()
}

func (c *fnCluster) Produce(ctx context.Context, topic string, p int32, batches []byte) (bus.ProduceResult, error) {
	l, err := c.leader(topic, p)
	switch {
	case err != nil:
		return bus.ProduceResult{}, err
	case l < 0:
		return bus.ProduceResult{}, fmt.Errorf("%w: %s/%d has no leader", kerr.LeaderNotAvailable, topic, p)
	case l == c.b.NodeID():
		return c.b.Produce(ctx, topic, p, batches, bus.AcksAll)
	}
	peers := c.peers.Load()
	if peers == nil {
		return bus.ProduceResult{}, fmt.Errorf("%w: peer links not started", kerr.BrokerNotAvailable)
	}
	return peers.Produce(ctx, l, topic, p, batches)
}

// coordinator is the node coordinating group g; peers is nil when it is
// this node.
func (c *fnCluster) coordinator(g string) (int32, *transport.Peers, error) {
	id := c.b.GroupCoordinator(g)
	if id < 0 {
		return -1, nil, fmt.Errorf("%w: no group coordinator yet", kerr.CoordinatorNotAvailable)
	}
	if id == c.b.NodeID() {
		return id, nil, nil
	}
	peers := c.peers.Load()
	if peers == nil {
		return -1, nil, fmt.Errorf("%w: peer links not started", kerr.CoordinatorNotAvailable)
	}
	return id, peers, nil
}

func (c *fnCluster) FetchOffsets(ctx context.Context, g string, tps []group.TopicPartition) (map[group.TopicPartition]group.OffsetCommit, error) {
	id, peers, err := c.coordinator(g)
	if err != nil {
		return nil, err
	}
	if peers == nil {
		return c.b.Groups().FetchOffsets(g, tps)
	}
	return peers.FetchOffsets(ctx, id, g, tps)
}

func (c *fnCluster) CommitOffsets(ctx context.Context, g string, offs map[group.TopicPartition]group.OffsetCommit) error {
	id, peers, err := c.coordinator(g)
	if err != nil {
		return err
	}
	if peers == nil {
		return c.b.Groups().CommitOffsets(g, "", -1, offs)
	}
	return peers.CommitOffsets(ctx, id, g, offs)
}

// DeleteGroup deletes the group on the node that coordinates it; every node
// is asked (ApplyFunctionDeleted), the others do nothing.
func (c *fnCluster) DeleteGroup(_ context.Context, g string) error {
	if c.b.GroupCoordinator(g) != c.b.NodeID() {
		return nil
	}
	if err := c.b.Groups().DeleteGroups(g)[g]; err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return err
	}
	return nil
}

func (c *fnCluster) PutFunction(ctx context.Context, name string, record []byte, hash string, module []byte) error {
	n := c.node.Load()
	if n == nil {
		return fmt.Errorf("%w: the cluster metadata is not ready yet", kerr.NotController)
	}
	return n.PutFunction(ctx, cluster.Function{Name: name, Manifest: record, ModuleSHA256: hash}, module)
}

func (c *fnCluster) DeleteFunction(ctx context.Context, name string) error {
	n := c.node.Load()
	if n == nil {
		return fmt.Errorf("%w: the cluster metadata is not ready yet", kerr.NotController)
	}
	return n.DeleteFunction(ctx, name)
}

func (c *fnCluster) Module(hash string) ([]byte, bool) {
	n := c.node.Load()
	if n == nil {
		return nil, false
	}
	return n.Module(hash)
}

// fnApplier is the metadata's Applier on a node running functions: the
// broker, plus the function manager, which learns every function decision
// and is told to look at leadership after every topic change.
type fnApplier struct {
	*bus.Broker
	fns *functions.Manager
}

var _ cluster.FunctionApplier = fnApplier{}

func (a fnApplier) ApplyTopic(ts bus.TopicState) error {
	err := a.Broker.ApplyTopic(ts)
	a.fns.Kick()
	return err
}

func (a fnApplier) ApplyFunction(f cluster.Function) error {
	return a.fns.ApplyFunction(f.Name, f.Manifest)
}

func (a fnApplier) ApplyFunctionDeleted(name string) error {
	return a.fns.ApplyFunctionDeleted(name)
}
