package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wispbus/wisp/client"
)

// clusterNodes is the size of both clusters: 3 wisp nodes (RF 3) and 3
// JetStream servers (R3), all on this machine's loopback.
const clusterNodes = 3

// failover is one system's time from killing a partition's (stream's)
// leader to the first acknowledgement of a produce after it.
type failover struct {
	system string
	// victim names the process killed; took is the time from the kill to
	// the first ack, err why it was not measured.
	victim string
	took   time.Duration
	err    string
}

// clusterPhase starts a 3-node wisp cluster and a 3-server JetStream
// cluster (each only while it is measured together with the other), runs
// the replicated rows, then kills each side's leader and measures the time
// to the first acknowledgement after it.
func (s *suite) clusterPhase(ctx context.Context, wispBin, tmp string) error {
	logf("starting a %d-node wisp cluster and a %d-server JetStream cluster", clusterNodes, clusterNodes)
	wnodes, err := startWispCluster(ctx, wispBin, mkdir(tmp, "wisp-cluster"), clusterNodes)
	if err != nil {
		return fmt.Errorf("wisp cluster: %w", err)
	}
	defer func() {
		for _, x := range wnodes {
			_ = x.stop()
		}
	}()
	nnodes, err := startNATSCluster(ctx, mkdir(tmp, "nats-cluster"), clusterNodes)
	if err != nil {
		return fmt.Errorf("NATS cluster: %w", err)
	}
	defer func() {
		for _, x := range nnodes {
			_ = x.stop()
		}
	}()
	w, err := newWispSys(ctx, clusterNodes, wnodes...)
	if err != nil {
		return err
	}
	defer w.close()
	n, err := newNATSSys(ctx, clusterNodes, nnodes...)
	if err != nil {
		return err
	}
	defer n.close()

	wprod, err := w.producer(ctx)
	if err != nil {
		return err
	}
	defer wprod.Close()
	npub, err := n.publisher()
	if err != nil {
		return err
	}
	defer npub.close()

	wDur, nDur := fmt.Sprintf("RF %d, acks=all, %s", clusterNodes, wispOS), fmt.Sprintf("R%d, %s", clusterNodes, natsOS)
	wt, err := w.topic(ctx, "r3-100", "os")
	if err != nil {
		return err
	}
	_, subj, err := n.stream(ctx, "r3-100")
	if err != nil {
		return err
	}
	r := &row{id: "r3-async", title: fmt.Sprintf("produce async, 100 B, %d replicas", clusterNodes), wispDur: wDur, natsDur: nDur}
	s.rep.rows = append(s.rep.rows, r)
	s.measure(ctx, r, w.server(), n.server(),
		func(ctx context.Context, d time.Duration) (run, error) {
			return wispProduceAsync(ctx, wprod, wt, 100, d)
		},
		func(ctx context.Context, d time.Duration) (run, error) {
			return natsProduceAsync(ctx, npub, subj, 100, d)
		})
	s.drop(ctx, w, n, "r3-100")

	wts, err := w.topic(ctx, "r3-sync", "os")
	if err != nil {
		return err
	}
	_, subjs, err := n.stream(ctx, "r3-sync")
	if err != nil {
		return err
	}
	r = &row{id: "r3-sync", title: fmt.Sprintf("produce sync, 100 B, %d replicas, one at a time", clusterNodes), wispDur: wDur, natsDur: nDur, sync: true}
	s.rep.rows = append(s.rep.rows, r)
	s.measure(ctx, r, w.server(), n.server(),
		func(ctx context.Context, d time.Duration) (run, error) {
			return wispProduceSync(ctx, wprod, wts, 100, d)
		},
		func(ctx context.Context, d time.Duration) (run, error) {
			return natsProduceSync(ctx, n.js, subjs, 100, d)
		})
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// Failover last: it leaves each cluster a member short.
	s.rep.failovers = append(s.rep.failovers, wispFailover(ctx, w), natsFailover(ctx, n))
	for _, f := range s.rep.failovers {
		if f.err != "" {
			logf("failover %s: %s", f.system, f.err)
		} else {
			logf("failover %s: killed %s, first ack %s later", f.system, f.victim, f.took.Round(time.Millisecond))
		}
	}
	return ctx.Err()
}

// failoverLoop produces one record at a time with produce (each call
// bounded by a few seconds; a failed call is retried at once) until kill
// has run and a produce started after it is acknowledged, and returns the
// time from the kill to that acknowledgement. kill runs once 200 acks have
// come back, so the producer's connections and metadata are warm.
func failoverLoop(ctx context.Context, produce func(context.Context) error, kill func() error) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var killed time.Time
	acks := 0
	for ctx.Err() == nil {
		if killed.IsZero() && acks >= 200 {
			if err := kill(); err != nil {
				return 0, err
			}
			killed = time.Now()
		}
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		err := produce(cctx)
		ccancel()
		if err != nil {
			if killed.IsZero() {
				return 0, fmt.Errorf("before the kill: %w", err)
			}
			time.Sleep(time.Millisecond)
			continue
		}
		acks++
		if !killed.IsZero() {
			// The kill runs between two calls, so this call started
			// after it: no acknowledgement the old leader sent before
			// it died is counted.
			return time.Since(killed), nil
		}
	}
	return 0, errors.New("no acknowledgement within a minute of the kill")
}

// wispFailover kills the leader of a fresh RF 3 topic's partition while a
// client (bootstrapped with every node) produces one record at a time.
func wispFailover(ctx context.Context, w *wispSys) failover {
	f := failover{system: "wisp"}
	topic, err := w.topic(ctx, "failover", "os")
	if err == nil {
		var c *client.Client
		if c, err = w.client(ctx); err == nil {
			defer c.Close()
			val := payload(100)
			f.took, err = failoverLoop(ctx,
				func(ctx context.Context) error { return c.ProduceSync(ctx, &client.Record{Topic: topic, Value: val}) },
				func() error {
					ti, err := w.admin.DescribeTopic(ctx, topic)
					if err != nil {
						return err
					}
					leader := ti.Partitions[0].Leader
					if leader < 1 || int(leader) > len(w.nodes) {
						return fmt.Errorf("leader %d unknown", leader)
					}
					f.victim = fmt.Sprintf("node %d, the partition leader", leader)
					w.nodes[leader-1].kill()
					return nil
				})
		}
	}
	if err != nil {
		f.err = err.Error()
	}
	return f
}

// natsFailover kills the leader of a fresh R3 stream while a client
// connected to another server publishes one message at a time.
func natsFailover(ctx context.Context, n *natsSys) failover {
	f := failover{system: "NATS JetStream"}
	err := func() error {
		name, subj, err := n.stream(ctx, "failover")
		if err != nil {
			return err
		}
		st, err := n.js.Stream(ctx, name)
		if err != nil {
			return err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return errors.New("stream has no leader")
		}
		leader := -1
		for i := range n.nodes {
			if fmt.Sprintf("n%d", i+1) == info.Cluster.Leader {
				leader = i
			}
		}
		if leader < 0 {
			return fmt.Errorf("leader %q unknown", info.Cluster.Leader)
		}
		// A connection to a server that stays: what is measured is the
		// stream's failover, not the client's reconnect.
		nc, js, err := natsConnect(n.nodes[(leader+1)%len(n.nodes)].url)
		if err != nil {
			return err
		}
		defer nc.Close()
		val := payload(100)
		f.took, err = failoverLoop(ctx,
			func(ctx context.Context) error { _, err := js.Publish(ctx, subj, val); return err },
			func() error {
				f.victim = fmt.Sprintf("server %s, the stream leader", info.Cluster.Leader)
				n.nodes[leader].kill()
				return nil
			})
		return err
	}()
	if err != nil {
		f.err = err.Error()
	}
	return f
}
