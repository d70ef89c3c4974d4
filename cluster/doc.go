// Package cluster is wisp's metadata plane: one hashicorp/raft group that
// decides topics, replica placement, partition leaders, leader epochs,
// ISRs, producer id blocks and function deployments, with membership from
// package gossip and Raft traffic over the node's QUIC endpoint.
//
//	cfg := cluster.DefaultConfig()
//	cfg.NodeID, cfg.DataDir, cfg.QUICAddr = 1, dir, "127.0.0.1:7070"
//	cfg.BootstrapExpect = 3
//	srv, _ := transport.NewServer(tcfg, broker)
//	node, err := cluster.Start(cfg, srv, broker) // before srv.Start
//	if err != nil { ... }
//	_ = srv.Start()
//	defer node.Close(ctx)
//	err = node.CreateTopic(ctx, bus.TopicSpec{Name: "t", Partitions: 3, ReplicationFactor: 3})
//
// Node implements bus.Cluster. Every node holds the whole metadata (the
// Raft FSM) and tells its Applier (the broker) each decision in log order.
// Writes go to the controller, the Raft leader: a node that is not the
// controller forwards them over QUIC (ALPN wisp-raft/1); the controller
// validates and places, commits a command, and answers with its log index;
// the calling node returns once its own FSM has applied that index, so a
// CreateTopic followed by Topic sees the topic on the calling node.
//
// The controller also reacts to membership: it registers nodes seen in
// gossip, adds them to the Raft group (voters up to Config.VoterCap, then
// non-voters; a node that leaves gracefully is removed), and moves the
// leadership of partitions whose leader died (planPartitions). Its
// decisions are pure functions in plan.go.
//
// Goroutines: one reconcile loop per Node, plus what raft, memberlist and
// the QUIC handler own; Close stops them all and returns when they are
// gone. The ALPN handler's goroutines belong to the transport.Server and
// end when the Node closes.
//
// # Design notes
//
// Consensus is hashicorp/raft, never home-made: topic configs, replica
// assignments, leaders, epochs, ISRs, producer id blocks and function
// deployments must not split-brain. Data does not go through Raft; only
// these decisions do (Kafka KRaft's split).
//
// Raft runs over the node's QUIC endpoint (one UDP port per node) rather
// than its own TCP port: a raft.StreamLayer (stream.go) keeps one QUIC
// connection per peer and opens a stream per raft connection; the first
// byte of each stream says whether it carries Raft or a forwarded write.
// A separate ALPN for forwarding was rejected as a second connection per
// peer for no gain; a wire API on wisp/1 was rejected because forwarding
// is node-to-node only and its messages would leak into the public
// protocol.
//
// Bootstrap: each of the BootstrapExpect lowest-id live members, seeing
// that no member has Raft state yet (gossip metadata), bootstraps with the
// same configuration; hashicorp/raft accepts identical bootstraps. A node
// that joins later never bootstraps: a member with Raft state exists, so
// it waits for the controller to add it. The residual risk is operator
// error (different BootstrapExpect values, or a node started with
// BootstrapExpect 1 and no Join beside an existing cluster).
//
// Membership follows gossip on the controller: alive nodes are added
// (voters up to VoterCap, then non-voters, promoted when a voter leaves),
// nodes that leave gracefully are removed, nodes that fail stay (they may
// come back; removing a dead voter is an operator decision, not yet
// exposed).
//
// Failover is decided by the controller from gossip liveness (planPartitions):
// a dead leader is replaced by the first live ISR member in replica order
// with the epoch bumped; without one the partition goes offline keeping
// its ISR, and comes back with the first ISR member that returns (no
// unclean election). Dead followers leave the ISR without an epoch bump;
// leaders add followers back themselves (AlterISR, fenced by epoch).
//
// Peers are authenticated by TLS when the transport has a CA
// (transport.Server.PeerTLS), and by the gossip key when one is set: every
// node-to-node stream carries HMAC(key, TLS exporter secret), so only key
// holders reach Raft or the controller. With neither, any host that can
// reach the QUIC port can speak Raft: a known gap, fine on a trusted LAN.
//
// Known gaps: a forwarded write whose answer is lost is
// retried, so it may report kerr.TopicAlreadyExists for a topic it created;
// function modules above MaxModuleBytes need a store outside Raft.
package cluster
