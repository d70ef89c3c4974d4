package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/bbolt"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/gossip"
	"github.com/wispbus/wisp/transport"
)

// Node is this node's membership in the cluster metadata. It implements
// bus.Cluster.
type Node struct {
	cfg   Config
	log   *slog.Logger
	srv   *transport.Server
	fsm   *fsm
	peers *peers
	layer *streamLayer
	trans *raft.NetworkTransport
	store *raftboltdb.BoltStore
	raft  *raft.Raft
	gsp   *gossip.Gossip

	started    time.Time
	hadState   bool          // Raft state existed on disk at Start
	booted     bool          // bootstrapped or had state; loop goroutine only
	lastRejoin time.Time     // maybeRejoin; loop goroutine only
	readyTerm  atomic.Uint64 // term in which this leader's FSM caught up (Barrier)
	leaderCh   chan bool     // raft's NotifyCh

	// ctlMu serializes the controller's decisions (requests and
	// reconciliation), so each plans on the state the previous one left.
	ctlMu sync.Mutex

	ctx      context.Context // ends with Close
	cancel   context.CancelFunc
	stopLoop chan struct{}  // closed by Close, before the gossip leave
	wg       sync.WaitGroup // the reconcile loop
	closed   atomic.Bool
}

var _ bus.Cluster = (*Node)(nil)

// Start opens the Raft stores under cfg.DataDir, registers the cluster
// ALPN on srv (which must not be started yet; start it right after), joins
// gossip and starts the metadata group. It returns without waiting for a
// controller. applier (normally the broker) is told every topic decision;
// it may be nil.
func Start(cfg Config, srv *transport.Server, applier Applier) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if srv == nil {
		return nil, errors.New("cluster: nil transport server")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("node", cfg.NodeID)
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	hlog := newHCLogger(logger)
	n := &Node{cfg: cfg, log: logger, srv: srv, fsm: newFSM(logger, applier), leaderCh: make(chan bool, 16),
		stopLoop: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.peers = newPeers(srv, cfg.GossipKey)
	n.layer = newStreamLayer(cfg.QUICAddr, n.peers, n.ctx.Done())

	ok := false
	defer func() {
		if !ok {
			n.cancel()
			if n.raft != nil {
				_ = n.raft.Shutdown().Error()
			}
			_ = n.release()
		}
	}()
	if err := srv.HandleALPN(ALPN, n.serveConn); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	var err error
	n.store, err = raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: 2 * time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: open %s: %w", filepath.Join(dir, "raft.db"), err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hlog)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: n.layer, MaxPool: 3, Timeout: 5 * time.Second, Logger: hlog,
	})
	if n.hadState, err = raft.HasExistingState(n.store, n.store, snaps); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	n.booted = n.hadState

	rc := raft.DefaultConfig()
	rc.LocalID = serverID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = 20 * time.Millisecond
	rc.SnapshotThreshold = 1024
	rc.SnapshotInterval = 30 * time.Second
	rc.TrailingLogs = 4096
	rc.NotifyCh = n.leaderCh
	rc.Logger = hlog
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("cluster: raft config: %w", err)
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, n.store, n.store, snaps, n.trans); err != nil {
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}

	gcfg := gossip.DefaultConfig()
	gcfg.NodeID = cfg.NodeID
	gcfg.BindAddr = cfg.GossipBind
	gcfg.Advertise = cfg.GossipAdvertise
	gcfg.Join = cfg.Join
	gcfg.Key = cfg.GossipKey
	gcfg.ProbeInterval, gcfg.ProbeTimeout = cfg.ProbeInterval, cfg.ProbeTimeout
	gcfg.SuspicionMult, gcfg.GossipInterval = cfg.SuspicionMult, cfg.GossipInterval
	gcfg.Logger = logger
	gcfg.Meta = gossip.Meta{
		ID: cfg.NodeID, QUIC: cfg.QUICAddr, Kafka: cfg.KafkaAddr, HTTP: cfg.HTTPAddr, Rack: cfg.Rack,
		Raft: n.hadState,
	}
	if n.gsp, err = gossip.New(gcfg); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	n.started = time.Now()
	n.wg.Add(1)
	go n.loop()
	ok = true
	n.log.Info("cluster node started", "quic", cfg.QUICAddr, "gossip", n.gsp.LocalAddr(),
		"raft_state", n.hadState, "bootstrap_expect", cfg.BootstrapExpect)
	return n, nil
}

// GossipAddr is the gossip address other nodes can Join.
func (n *Node) GossipAddr() string { return n.gsp.LocalAddr() }

// Close leaves the cluster gracefully: a controller hands its leadership
// over first, gossip announces the departure (the controller then removes
// this node from the Raft group and moves its partitions' leadership),
// Raft shuts down, and Close returns once every goroutine of the node is
// gone, or with ctx.Err() if ctx ends first. The data stays: Start on the
// same DataDir rejoins.
func (n *Node) Close(ctx context.Context) error {
	if n.closed.Swap(true) {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- n.shutdown() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) shutdown() error {
	return n.stop(true)
}

// stop shuts the node down; graceful is false only in tests, to simulate
// a crash (no leadership transfer, no gossip leave).
func (n *Node) stop(graceful bool) error {
	if graceful && n.raft.State() == raft.Leader {
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			n.log.Debug("leadership transfer on close failed", "err", err)
		}
	}
	// The loop stops before the leave: it must not rejoin gossip.
	close(n.stopLoop)
	n.wg.Wait()
	if graceful {
		if err := n.gsp.Leave(time.Second); err != nil {
			n.log.Debug("gossip leave failed", "err", err)
		}
	} else {
		_ = n.gsp.Close()
	}
	n.cancel()
	var errs []error
	if err := n.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("cluster: raft shutdown: %w", err))
	}
	errs = append(errs, n.release())
	n.log.Info("cluster node closed")
	return errors.Join(errs...)
}

// release closes what Start opened, in reverse order.
func (n *Node) release() error {
	var errs []error
	if n.gsp != nil {
		errs = append(errs, n.gsp.Close())
	}
	if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	n.layer.Close()
	n.peers.close()
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	return errors.Join(errs...)
}

// loop bootstraps when it is time, keeps this node's gossip metadata
// current and, on the controller, reconciles: on every membership change,
// leadership change and ReconcileInterval.
func (n *Node) loop() {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.ReconcileInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.stopLoop:
			return
		case <-tick.C:
		case <-n.gsp.Changed():
		case leader := <-n.leaderCh:
			if leader {
				n.log.Info("elected controller", "term", n.raft.CurrentTerm())
			}
		}
		n.step()
	}
}

func (n *Node) step() {
	if !n.booted && n.raft.LastIndex() > 0 {
		n.booted = true // added to the group by the controller
	}
	if !n.booted {
		n.maybeBootstrap()
	}
	if m := n.gsp.Meta(); !m.Raft && n.raft.LastIndex() > 0 {
		m.Raft = true
		if err := n.gsp.SetMeta(m); err != nil {
			n.log.Debug("gossip metadata update failed", "err", err)
		}
	}
	n.maybeRejoin()
	if n.raft.State() == raft.Leader {
		n.reconcile()
	}
}

// maybeRejoin joins the gossip addresses the metadata knows when this
// node is alone in gossip although the metadata has other nodes: a node
// restarted without Join (or whose Join addresses are gone) finds the
// cluster again, so that the controller sees it alive. At most every
// rejoinInterval.
func (n *Node) maybeRejoin() {
	if len(n.gsp.Members()) > 1 || time.Since(n.lastRejoin) < rejoinInterval {
		return
	}
	var addrs []string
	n.fsm.read(func(s *state) {
		for id, r := range s.Nodes {
			if id != n.cfg.NodeID && r.Gossip != "" {
				addrs = append(addrs, r.Gossip)
			}
		}
	})
	if len(addrs) == 0 {
		return
	}
	n.lastRejoin = time.Now()
	slices.Sort(addrs)
	if k, err := n.gsp.Join(addrs); err != nil {
		n.log.Debug("gossip rejoin from metadata failed", "addrs", addrs, "err", err)
	} else {
		n.log.Info("gossip rejoined from metadata", "answered", k)
	}
}

// rejoinInterval spaces maybeRejoin's attempts.
const rejoinInterval = 3 * time.Second

func (n *Node) maybeBootstrap() {
	if len(n.cfg.Join) > 0 && !n.gsp.Joined() {
		return // a node told to join must not start a cluster of its own
	}
	cfg, ok := planBootstrap(n.gsp.Members(), n.cfg.NodeID, n.cfg.BootstrapExpect, n.cfg.VoterCap)
	if !ok {
		return
	}
	err := n.raft.BootstrapCluster(cfg).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		n.log.Warn("raft bootstrap failed", "err", err)
		return
	}
	n.booted = true
	n.log.Info("metadata group bootstrapped", "servers", len(cfg.Servers))
}

// ready reports whether this node is the controller with its FSM caught
// up with every earlier term.
func (n *Node) ready() bool {
	return n.raft.State() == raft.Leader && n.raft.CurrentTerm() == n.readyTerm.Load()
}

// reconcile is the controller's periodic work.
func (n *Node) reconcile() {
	if !n.ready() {
		term := n.raft.CurrentTerm()
		if err := n.raft.Barrier(5 * time.Second).Error(); err != nil {
			n.log.Debug("controller barrier failed", "err", err)
			return
		}
		if n.raft.State() != raft.Leader || n.raft.CurrentTerm() != term {
			return
		}
		n.readyTerm.Store(term)
	}
	n.ctlMu.Lock()
	defer n.ctlMu.Unlock()

	known := n.gsp.Known()
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, ch := range planServers(f.Configuration(), known, n.cfg.NodeID, n.cfg.VoterCap) {
			n.changeServer(ch)
		}
	}
	var cmds []command
	n.fsm.read(func(s *state) { cmds = planRegistrations(s, n.gsp.Members()) })
	for _, c := range cmds {
		n.commitLogged(c)
	}
	alive := n.aliveSet(known)
	n.fsm.read(func(s *state) { cmds = planPartitions(s, alive) })
	for _, c := range cmds {
		n.commitLogged(c)
	}
}

// aliveSet is the set of nodes the controller counts as alive: live in
// gossip, and, during the first seconds after this node started, also the
// registered nodes gossip has not heard of yet (after a full restart they
// may simply not have rejoined, and moving their partitions would be
// churn).
func (n *Node) aliveSet(known []gossip.Member) map[int32]bool {
	alive := map[int32]bool{n.cfg.NodeID: true}
	heard := map[int32]bool{}
	for _, m := range known {
		heard[m.ID] = true
		if m.State == gossip.StateAlive {
			alive[m.ID] = true
		}
	}
	if time.Since(n.started) < startupGrace {
		n.fsm.read(func(s *state) {
			for id := range s.Nodes {
				if !heard[id] {
					alive[id] = true
				}
			}
		})
	}
	return alive
}

// startupGrace is how long a fresh controller process treats registered
// nodes that gossip has not heard of as alive.
const startupGrace = 5 * time.Second

func (n *Node) changeServer(ch serverChange) {
	var f raft.IndexFuture
	switch ch.Kind {
	case "voter":
		f = n.raft.AddVoter(serverID(ch.ID), raft.ServerAddress(ch.Addr), 0, 5*time.Second)
	case "nonvoter":
		f = n.raft.AddNonvoter(serverID(ch.ID), raft.ServerAddress(ch.Addr), 0, 5*time.Second)
	case "remove":
		f = n.raft.RemoveServer(serverID(ch.ID), 0, 5*time.Second)
	default:
		return
	}
	if err := f.Error(); err != nil {
		n.log.Warn("raft configuration change failed", "change", ch.Kind, "server", ch.ID, "err", err)
		return
	}
	n.log.Info("raft configuration changed", "change", ch.Kind, "server", ch.ID, "addr", ch.Addr)
}

func (n *Node) commitLogged(c command) {
	_, res, err := n.commit(c)
	if err == nil {
		err = res.Err
	}
	switch {
	case err == nil:
		if c.Op == opUpdatePartition {
			n.log.Info("partition updated", "topic", c.Name, "partition", c.Partition, "leader", c.Leader, "isr", c.ISR)
		}
	case errors.Is(err, kerr.FencedLeaderEpoch):
		// Planned on a state that moved on; the next round plans again.
	default:
		n.log.Warn("controller command failed", "op", c.Op, "err", err)
	}
}

// commit appends c to the metadata log and waits for it to be applied on
// this (leader) node.
func (n *Node) commit(c command) (uint64, applyResult, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return 0, applyResult{}, fmt.Errorf("cluster: encode command: %w", err)
	}
	f := n.raft.Apply(data, 5*time.Second)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
			errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrRaftShutdown) {
			return 0, applyResult{}, fmt.Errorf("%w: %v", errNotController, err)
		}
		return 0, applyResult{}, fmt.Errorf("cluster: commit %s: %w", c.Op, err)
	}
	res, _ := f.Response().(applyResult)
	return f.Index(), res, nil
}

// liveNodes lists the registered nodes alive in gossip (placement
// candidates).
func (n *Node) liveNodes(s *state) []nodeRecord {
	alive := map[int32]bool{n.cfg.NodeID: true}
	for _, m := range n.gsp.Members() {
		alive[m.ID] = true
	}
	var out []nodeRecord
	for id, rec := range s.Nodes {
		if alive[id] {
			out = append(out, rec)
		}
	}
	return out
}

// handle serves a write on the controller: validate, plan, commit.
func (n *Node) handle(ctx context.Context, req request) (uint64, int64, error) {
	if n.closed.Load() {
		return 0, 0, fmt.Errorf("%w: node closing", errNotController)
	}
	if !n.ready() {
		return 0, 0, errNotController
	}
	n.ctlMu.Lock()
	defer n.ctlMu.Unlock()
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	var (
		cmd command
		err error
	)
	switch req.Op {
	case opCreateTopic:
		if req.Spec == nil {
			return 0, 0, fmt.Errorf("%w: no topic spec", kerr.InvalidRequest)
		}
		var id [16]byte
		_, _ = rand.Read(id[:])
		n.fsm.read(func(s *state) {
			cmd, err = planCreateTopic(s, n.liveNodes(s), *req.Spec, id, n.cfg.DefaultPartitions,
				n.cfg.DefaultReplicationFactor, n.cfg.ValidateConfigs)
		})
	case opDeleteTopic:
		n.fsm.read(func(s *state) {
			if _, ok := s.Topics[req.Name]; !ok {
				err = fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, req.Name)
			}
		})
		cmd = command{Op: opDeleteTopic, Name: req.Name}
	case opAlterConfigs:
		n.fsm.read(func(s *state) {
			cmd, err = planAlterConfigs(s, req.Name, req.Configs, req.Incremental, n.cfg.ValidateConfigs)
		})
	case opAddPartitions:
		n.fsm.read(func(s *state) { cmd, err = planAddPartitions(s, n.liveNodes(s), req.Name, req.Total) })
	case opAlterISR:
		cmd = command{Op: opAlterISR, Name: req.Name, Partition: req.Partition, From: req.From,
			LeaderEpoch: req.LeaderEpoch, ISR: slices.Clone(req.ISR)}
		// Refuse a stale request without a log entry; apply checks again.
		n.fsm.read(func(s *state) {
			trial := &state{Topics: map[string]bus.TopicState{}}
			if t, ok := s.Topics[req.Name]; ok {
				trial.Topics[req.Name] = cloneTopic(t)
			}
			res, _ := trial.apply(0, cmd)
			err = res.Err
		})
	case opAllocatePIDs:
		cmd = command{Op: opAllocatePIDs, N: req.N}
	case opRemoveNode:
		if cmd, err = n.prepareRemoveNode(req.Node); err != nil {
			return 0, 0, err
		}
	case opPutFunction:
		if req.Function == nil {
			return 0, 0, fmt.Errorf("%w: no function", kerr.InvalidRequest)
		}
		if len(req.Module) > MaxModuleBytes {
			return 0, 0, fmt.Errorf("%w: %d bytes (max %d)", ErrModuleTooLarge, len(req.Module), MaxModuleBytes)
		}
		cmd = command{Op: opPutFunction, Function: req.Function, Module: req.Module}
	case opDeleteFunction:
		cmd = command{Op: opDeleteFunction, Name: req.Name}
	default:
		return 0, 0, fmt.Errorf("%w: unknown request %q", kerr.InvalidRequest, req.Op)
	}
	if err != nil {
		return 0, 0, err
	}
	idx, res, err := n.commit(cmd)
	if err != nil {
		return 0, 0, err
	}
	return idx, res.First, res.Err
}

// do runs a write: on this node if it is the controller, else forwarded to
// the controller; retried while there is no controller (an election, a
// controller that just went away) for up to Config.RetryTimeout. It
// returns once this node's FSM has applied the write.
//
// A forward whose answer is lost (the controller died after committing)
// is retried too, so a retried CreateTopic may fail with
// kerr.TopicAlreadyExists although it was this call that created it.
func (n *Node) do(ctx context.Context, req request) (int64, error) {
	req.From = n.cfg.NodeID
	deadline := time.Now().Add(n.cfg.RetryTimeout)
	for {
		if n.closed.Load() {
			return 0, ErrClosed
		}
		addr, id := n.raft.LeaderWithID()
		var (
			resp response
			err  error
		)
		switch {
		case id == "":
			err = errNotController
		case id == serverID(n.cfg.NodeID):
			resp.Index, resp.First, err = n.handle(ctx, req)
		default:
			if resp, err = n.forward(ctx, string(addr), req); err != nil {
				err = fmt.Errorf("%w: %v", errNotController, err)
			} else {
				err = decodeError(resp)
			}
		}
		if err == nil {
			if err := n.fsm.waitApplied(ctx, resp.Index); err != nil {
				return 0, err
			}
			return resp.First, nil
		}
		if !errors.Is(err, errNotController) {
			return 0, err
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%w: %v", kerr.NotController, err)
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-n.ctx.Done():
			t.Stop()
			return 0, ErrClosed
		case <-t.C:
		}
	}
}

// prepareRemoveNode takes a dead node out of the Raft group, on the
// controller, and returns the command that unregisters it.
func (n *Node) prepareRemoveNode(id int32) (command, error) {
	if id == n.cfg.NodeID {
		return command{}, fmt.Errorf("%w: node %d is the controller", kerr.InvalidRequest, id)
	}
	for _, m := range n.gsp.Members() {
		if m.ID == id {
			return command{}, fmt.Errorf("%w: node %d is alive; stop it first", kerr.InvalidRequest, id)
		}
	}
	registered := false
	n.fsm.read(func(s *state) { _, registered = s.Nodes[id] })
	if !registered {
		return command{}, fmt.Errorf("%w: node %d is not registered", kerr.InvalidRequest, id)
	}
	if err := n.raft.RemoveServer(serverID(id), 0, 5*time.Second).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return command{}, fmt.Errorf("%w: %v", errNotController, err)
		}
		return command{}, fmt.Errorf("cluster: remove raft server %d: %w", id, err)
	}
	n.log.Info("raft configuration changed", "change", "remove", "server", id)
	return command{Op: opRemoveNode, Node: &nodeRecord{ID: id}}, nil
}

// RemoveNode forgets a node that is gone for good: it leaves the Raft group
// (so that a live non-voter can take its vote) and the registered nodes.
// The node must be dead in gossip (kerr.InvalidRequest otherwise). Its
// partitions keep it in their replica lists; reassignment is not done.
// A node that comes back later is registered and added again.
func (n *Node) RemoveNode(ctx context.Context, id int32) error {
	_, err := n.do(ctx, request{Op: opRemoveNode, Node: id})
	return err
}

// CreateTopic implements bus.Cluster: the controller places the replicas
// on the live nodes (rack-aware when racks are set) and commits the topic.
// Errors: kerr.TopicAlreadyExists, kerr.InvalidTopicException,
// kerr.InvalidPartitions, kerr.InvalidReplicationFactor (more replicas
// than live nodes), kerr.InvalidConfig, kerr.NotController.
func (n *Node) CreateTopic(ctx context.Context, spec bus.TopicSpec) error {
	_, err := n.do(ctx, request{Op: opCreateTopic, Spec: &spec})
	return err
}

// DeleteTopic implements bus.Cluster.
func (n *Node) DeleteTopic(ctx context.Context, name string) error {
	_, err := n.do(ctx, request{Op: opDeleteTopic, Name: name})
	return err
}

// AlterTopicConfigs implements bus.Cluster: replace a topic's config
// overrides, or, when incremental, set the given keys and remove keys
// mapped to "".
func (n *Node) AlterTopicConfigs(ctx context.Context, name string, configs map[string]string, incremental bool) error {
	_, err := n.do(ctx, request{Op: opAlterConfigs, Name: name, Configs: configs, Incremental: incremental})
	return err
}

// AddPartitions implements bus.Cluster: grow a topic to total partitions,
// placing the new ones on the live nodes.
func (n *Node) AddPartitions(ctx context.Context, name string, total int32) error {
	_, err := n.do(ctx, request{Op: opAddPartitions, Name: name, Total: total})
	return err
}

// AlterISR implements bus.Cluster: set the ISR of a partition this node
// leads at leaderEpoch. kerr.FencedLeaderEpoch: the epoch is stale (this
// node was deposed); kerr.NotLeaderForPartition: this node is not the
// leader; kerr.InvalidRequest: the ISR is not a set of replicas with the
// leader.
func (n *Node) AlterISR(ctx context.Context, topic string, partition, leaderEpoch int32, isr []int32) error {
	_, err := n.do(ctx, request{Op: opAlterISR, Name: topic, Partition: partition, LeaderEpoch: leaderEpoch, ISR: isr})
	return err
}

// AllocateProducerIDs implements bus.Cluster: reserve n consecutive
// producer ids, unique in the cluster, and return the first.
func (n *Node) AllocateProducerIDs(ctx context.Context, count int64) (int64, error) {
	return n.do(ctx, request{Op: opAllocatePIDs, N: count})
}

// PutFunction deploys (or replaces) a function: its manifest, and its
// module bytes when module is not nil (at most MaxModuleBytes; they are
// kept by SHA-256, which f.ModuleSHA256 is set to). With a nil module,
// f.ModuleSHA256 must name a module already stored.
func (n *Node) PutFunction(ctx context.Context, f Function, module []byte) error {
	if module != nil {
		f.ModuleSHA256 = sha256Hex(module)
	}
	_, err := n.do(ctx, request{Op: opPutFunction, Function: &f, Module: module})
	return err
}

// DeleteFunction removes a deployed function (ErrUnknownFunction if it is
// not).
func (n *Node) DeleteFunction(ctx context.Context, name string) error {
	_, err := n.do(ctx, request{Op: opDeleteFunction, Name: name})
	return err
}

// Functions lists the deployed functions, sorted by name.
func (n *Node) Functions() []Function {
	var out []Function
	n.fsm.read(func(s *state) {
		for _, f := range s.Functions {
			f.Manifest = slices.Clone(f.Manifest)
			out = append(out, f)
		}
	})
	slices.SortFunc(out, func(a, b Function) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Module returns the module bytes stored under a hex SHA-256.
func (n *Node) Module(sum string) ([]byte, bool) {
	var b []byte
	var ok bool
	n.fsm.read(func(s *state) {
		b, ok = s.Modules[sum]
		b = slices.Clone(b)
	})
	return b, ok
}

// Topic returns a topic as this node's metadata holds it.
func (n *Node) Topic(name string) (bus.TopicState, bool) {
	var t bus.TopicState
	var ok bool
	n.fsm.read(func(s *state) {
		t, ok = s.Topics[name]
		t = cloneTopic(t)
	})
	return t, ok
}

// Topics lists every topic, sorted by name.
func (n *Node) Topics() []bus.TopicState {
	var out []bus.TopicState
	n.fsm.read(func(s *state) {
		for _, name := range s.sortedTopics() {
			out = append(out, cloneTopic(s.Topics[name]))
		}
	})
	return out
}

// Nodes implements bus.Cluster: the registered nodes (this one always
// included), sorted by id, with Alive from gossip.
func (n *Node) Nodes() []bus.NodeInfo {
	alive := map[int32]bool{}
	for _, m := range n.gsp.Members() {
		alive[m.ID] = true
	}
	var out []bus.NodeInfo
	self := false
	n.fsm.read(func(s *state) {
		for _, r := range s.Nodes {
			self = self || r.ID == n.cfg.NodeID
			out = append(out, bus.NodeInfo{ID: r.ID, QUIC: r.QUIC, Kafka: r.Kafka, HTTP: r.HTTP, Rack: r.Rack, Alive: alive[r.ID]})
		}
	})
	if !self {
		out = append(out, bus.NodeInfo{ID: n.cfg.NodeID, QUIC: n.cfg.QUICAddr, Kafka: n.cfg.KafkaAddr,
			HTTP: n.cfg.HTTPAddr, Rack: n.cfg.Rack, Alive: true})
	}
	slices.SortFunc(out, func(a, b bus.NodeInfo) int { return int(a.ID) - int(b.ID) })
	return out
}

// Node returns one node as Nodes does (ok false if it is not registered
// and is not this node); its QUIC field is what replication dials.
func (n *Node) Node(id int32) (bus.NodeInfo, bool) {
	for _, ni := range n.Nodes() {
		if ni.ID == id {
			return ni, true
		}
	}
	return bus.NodeInfo{}, false
}

// ControllerID implements bus.Cluster: the Raft leader's id, -1 if none is
// known.
func (n *Node) ControllerID() int32 {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return -1
	}
	return parseServerID(id)
}

// WaitController waits until this node knows a controller (or ctx ends).
func (n *Node) WaitController(ctx context.Context) error {
	for {
		if n.ControllerID() >= 0 {
			return nil
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
