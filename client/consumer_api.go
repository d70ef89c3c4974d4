package client

import (
	"context"
	"iter"
	"time"
)

// ConsumerOpt configures a Consumer; pass options to Client.NewConsumer.
type ConsumerOpt interface{ applyConsumer(*consumerCfg) }

type consumerOptFunc func(*consumerCfg)

func (f consumerOptFunc) applyConsumer(c *consumerCfg) { f(c) }

// Assignor names, as Kafka spells them. Kafka consumers in the same group
// must list at least one assignor in common with wisp consumers.
const (
	RangeAssignor      = "range"
	RoundRobinAssignor = "roundrobin"
	StickyAssignor     = "sticky"
)

// Defaults of the consumer options.
const (
	DefaultSessionTimeout     = 10 * time.Second
	DefaultRebalanceTimeout   = 60 * time.Second
	DefaultHeartbeatInterval  = 3 * time.Second
	DefaultAutoCommitInterval = 5 * time.Second
	DefaultFetchMaxBytes      = 1 << 20
	DefaultFetchBuffer        = 4
)

type consumerCfg struct {
	topics             []string
	partitions         map[string][]int32
	group              string
	instanceID         string
	assignors          []string
	sessionTimeout     time.Duration
	rebalanceTimeout   time.Duration
	heartbeatInterval  time.Duration
	autoCommit         bool
	autoCommitInterval time.Duration
	start              Offset
	reset              Offset
	fetchMaxBytes      int32
	fetchBuffer        int
	onAssigned         func(map[string][]int32)
	onRevoked          func(map[string][]int32)
}

func defaultConsumerCfg() consumerCfg {
	return consumerCfg{
		assignors:          []string{StickyAssignor, RangeAssignor, RoundRobinAssignor},
		sessionTimeout:     DefaultSessionTimeout,
		rebalanceTimeout:   DefaultRebalanceTimeout,
		heartbeatInterval:  DefaultHeartbeatInterval,
		autoCommit:         true,
		autoCommitInterval: DefaultAutoCommitInterval,
		start:              AtStart(),
		reset:              AtStart(),
		fetchMaxBytes:      DefaultFetchMaxBytes,
		fetchBuffer:        DefaultFetchBuffer,
	}
}

// Topics subscribes to every partition of these topics (or, in a group, to
// the share the group assigns), overriding the default of none.
func Topics(topics ...string) ConsumerOpt {
	return consumerOptFunc(func(c *consumerCfg) { c.topics = append(c.topics, topics...) })
}

// Partitions consumes exactly these partitions, without a group,
// overriding the default of every partition of Topics.
func Partitions(topic string, partitions ...int32) ConsumerOpt {
	return consumerOptFunc(func(c *consumerCfg) {
		if c.partitions == nil {
			c.partitions = map[string][]int32{}
		}
		c.partitions[topic] = append(c.partitions[topic], partitions...)
	})
}

// Group makes the consumer a member of a consumer group, overriding the
// default of no group (every partition of Topics, nothing committed).
func Group(id string) ConsumerOpt { return consumerOptFunc(func(c *consumerCfg) { c.group = id }) }

// InstanceID makes the member static (KIP-345), overriding the default of a
// dynamic member: a restart with the same instance id within the session
// timeout gets its partitions back without a rebalance.
func InstanceID(id string) ConsumerOpt {
	return consumerOptFunc(func(c *consumerCfg) { c.instanceID = id })
}

// Assignors sets the assignment strategies this member supports, most
// preferred first, overriding the default of sticky, range, roundrobin.
// The group uses the first one every member supports.
func Assignors(names ...string) ConsumerOpt {
	return consumerOptFunc(func(c *consumerCfg) { c.assignors = append([]string(nil), names...) })
}

// SessionTimeout sets how long the group waits for this member's heartbeat
// before dropping it, overriding the default of 10s.
func SessionTimeout(d time.Duration) ConsumerOpt {
	return consumerOptFunc(func(c *consumerCfg) { c.sessionTimeout = d })
}

// RebalanceTimeout sets how long the group waits for members to rejoin
// during a rebalance, overriding the default of 60s.
func RebalanceTimeout(d time.Duration) ConsumerOpt {
	return consumerOptFunc(func(c *consumerCfg) { c.rebalanceTimeout = d })
}

// HeartbeatInterval sets how often the member heartbeats, overriding the
// default of 3s. It bounds how fast the member notices a rebalance.
func HeartbeatInterval(d time.Duration) ConsumerOpt {
	return consumerOptFunc(func(c *consumerCfg) { c.heartbeatInterval = d })
}

// AutoCommitInterval sets how often the offsets of records the application
// has processed are committed, overriding the default of 5s.
func AutoCommitInterval(d time.Duration) ConsumerOpt {
	return consumerOptFunc(func(c *consumerCfg) { c.autoCommitInterval = d })
}

// DisableAutoCommit turns automatic commits off, overriding the default of
// on; commit with Consumer.Commit or Consumer.CommitRecords.
func DisableAutoCommit() ConsumerOpt {
	return consumerOptFunc(func(c *consumerCfg) { c.autoCommit = false })
}

// StartOffset sets where a partition is consumed from when the group has
// no committed offset for it (or there is no group), overriding the default
// of AtStart().
func StartOffset(o Offset) ConsumerOpt {
	return consumerOptFunc(func(c *consumerCfg) { c.start = o })
}

// ResetOffset sets where consumption resumes when the offset to consume is
// outside the log (deleted by retention, or beyond the end), overriding
// the default of AtStart().
func ResetOffset(o Offset) ConsumerOpt {
	return consumerOptFunc(func(c *consumerCfg) { c.reset = o })
}

// FetchMaxBytes bounds one pushed chunk of batches per partition,
// overriding the default of 1 MiB. At least one batch is always sent.
func FetchMaxBytes(n int32) ConsumerOpt {
	return consumerOptFunc(func(c *consumerCfg) { c.fetchMaxBytes = n })
}

// OnAssigned is called (on the consumer's goroutine, before records of the
// new assignment are returned) with the partitions assigned by each
// rebalance, overriding the default of no callback.
func OnAssigned(fn func(assigned map[string][]int32)) ConsumerOpt {
	return consumerOptFunc(func(c *consumerCfg) { c.onAssigned = fn })
}

// OnRevoked is called with the partitions taken away before a rebalance,
// after their processed offsets were committed (with auto-commit),
// overriding the default of no callback.
func OnRevoked(fn func(revoked map[string][]int32)) ConsumerOpt {
	return consumerOptFunc(func(c *consumerCfg) { c.onRevoked = fn })
}

// NewConsumer starts a consumer: with Group, it joins the group and
// consumes the partitions the group assigns; without, it consumes every
// partition of Topics (or exactly Partitions). ctx bounds the start only.
func (c *Client) NewConsumer(ctx context.Context, opts ...ConsumerOpt) (*Consumer, error) {
	cc := defaultConsumerCfg()
	for _, o := range opts {
		o.applyConsumer(&cc)
	}
	return newConsumer(ctx, c, cc)
}

// Records iterates over records as they arrive, blocking while there are
// none, until ctx ends or the consumer is closed (the iteration then ends;
// a context error is yielded once when ctx ends). Other errors are
// yielded with a nil record and consumption continues; break to stop.
//
//	for rec, err := range cons.Records(ctx) {
//		if err != nil {
//			log.Print(err)
//			continue
//		}
//		handle(rec)
//	}
//
// A record counts as processed, for auto-commit and the commit before a
// rebalance, once the loop body has returned for it. Breaking out of the
// loop keeps the rest of the records already fetched for the next call.
// Records is not safe for concurrent use with itself or Poll.
func (k *Consumer) Records(ctx context.Context) iter.Seq2[*Record, error] {
	return k.records(ctx)
}

// Poll returns the records available now, at least one, waiting until some
// arrive or ctx ends. Records returned by a Poll count as processed when
// the next Poll (or Commit) is called.
func (k *Consumer) Poll(ctx context.Context) ([]*Record, error) { return k.poll(ctx) }

// Commit commits, for every partition, the offset after the last record
// handed to the application (by Records or Poll); records still buffered
// in the consumer are never covered. It is a no-op without a group.
func (k *Consumer) Commit(ctx context.Context) error { return k.commit(ctx) }

// CommitRecords commits the offsets after the given records (the highest
// per partition), which must have been handed to the application by this
// consumer.
func (k *Consumer) CommitRecords(ctx context.Context, recs ...*Record) error {
	return k.commitRecords(ctx, recs...)
}

// Seek moves the consumption position of one partition (which must be
// assigned to this consumer) to o. Records after the seek come from the
// new position.
func (k *Consumer) Seek(ctx context.Context, topic string, partition int32, o Offset) error {
	return k.seek(ctx, topic, partition, o)
}

// SeekAll moves every assigned partition (of topics, or of every topic
// when none are given) to o, for example AtStart() or AtTime(t).
func (k *Consumer) SeekAll(ctx context.Context, o Offset, topics ...string) error {
	return k.seekAll(ctx, o, topics...)
}

// Assignment returns the partitions this consumer consumes now.
func (k *Consumer) Assignment() map[string][]int32 { return k.assignment() }

// Close stops consuming: with a group and auto-commit it commits what was
// processed, then leaves the group (the others rebalance at once; a static
// member with an InstanceID does not leave, so that a restart within the
// session timeout gets its partitions back). It returns when the consumer's
// goroutines are gone.
func (k *Consumer) Close(ctx context.Context) error { return k.close(ctx) }
