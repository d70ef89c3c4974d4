package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis Streams is the third system, measured where redis-server is
// installed (Debian: apt-get install redis-server): a redis-server child
// process of its own on a free port, in the run's temporary directory,
// with the append-only file on. Each destination is a stream; a record is
// an entry with one field.

// Redis's durability settings, named in the report.
const (
	redisOS     = "appendfsync everysec"
	redisAlways = "appendfsync always"
)

// redisPipes and redisDepth shape the pipelined XADD: redisPipes
// goroutines (connections) each send redisDepth commands per pipeline, so
// at most redisPipes × redisDepth entries await their reply, as NATS's
// PublishAsync window bounds its unacknowledged publishes.
const (
	redisPipes = 4
	redisDepth = 250
	redisFetch = 1000 // XRANGE COUNT of the consume workload
)

// redisNode is a redis-server process.
type redisNode struct {
	*proc
	addr    string
	version string
	fsync   string // appendfsync policy
}

// findRedis returns the redis-server binary and its version, or "" when
// it is not installed.
func findRedis() (bin, version string) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", ""
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "", ""
	}
	if m := regexp.MustCompile(`v=(\S+)`).FindSubmatch(out); m != nil {
		version = string(m[1])
	}
	return bin, version
}

// startRedis runs redis-server on a free loopback port with its data in
// dir: append-only file on with the given appendfsync policy ("everysec",
// Redis's default for AOF, or "always"); RDB snapshots and automatic AOF
// rewrites off, so that no background fork competes with the workload and
// the log only grows, as the other systems' logs do.
func startRedis(ctx context.Context, bin, version, dir, fsync string) (*redisNode, error) {
	addr, err := freeTCP()
	if err != nil {
		return nil, err
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	args := []string{"--port", port, "--bind", "127.0.0.1", "--dir", dir, "--daemonize", "no",
		"--appendonly", "yes", "--appendfsync", fsync, "--save", "",
		"--auto-aof-rewrite-percentage", "0", "--protected-mode", "no", "--loglevel", "warning"}
	p, err := startProc("redis-server", bin, args, filepath.Join(dir, "redis.log"))
	if err != nil {
		return nil, err
	}
	n := &redisNode{proc: p, addr: addr, version: version, fsync: fsync}
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := p.exited(); err != nil {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Ping(pctx).Err()
		cancel()
		if err == nil {
			return n, nil
		}
		if time.Now().After(deadline) {
			_ = p.stop()
			return nil, fmt.Errorf("redis-server not ready after 30s: %v; log tail:\n%s", err, tail(p.log, 2000))
		}
		select {
		case <-ctx.Done():
			_ = p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// redisSys drives a redis-server with go-redis.
type redisSys struct {
	node *redisNode
	c    *redis.Client
}

func newRedisSys(node *redisNode) *redisSys {
	return &redisSys{node: node, c: redis.NewClient(&redis.Options{Addr: node.addr, Protocol: 2,
		DisableIdentity: true, PoolSize: redisPipes + 2, ReadTimeout: time.Minute, WriteTimeout: time.Minute})}
}

func (r *redisSys) close() { r.c.Close() }

func (r *redisSys) server() *proc { return r.node.proc }

func (r *redisSys) key(dest string) string { return "bench-" + dest }

func (r *redisSys) records(ctx context.Context, key string) (int64, error) {
	return r.c.XLen(ctx, key).Result()
}

func (r *redisSys) drop(ctx context.Context, dest string) {
	if err := r.c.Del(ctx, r.key(dest)).Err(); err != nil {
		logf("delete Redis stream %s: %v", dest, err)
	}
}

// redisProduceAsync appends size-byte entries with pipelined XADD from
// redisPipes connections for d; each pipeline of redisDepth commands is
// counted once its replies are in.
func redisProduceAsync(ctx context.Context, c *redis.Client, key string, size int, d time.Duration) (run, error) {
	val := payload(size)
	var acked atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range redisPipes {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				pipe := c.Pipeline()
				for range redisDepth {
					pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"v", val}})
				}
				if _, err := pipe.Exec(ctx); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				acked.Add(redisDepth)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	if firstErr != nil {
		return run{}, firstErr
	}
	n := acked.Load()
	return run{records: n, bytes: n * int64(size), elapsed: el}, nil
}

// redisConsume reads the stream from its first entry with XRANGE ...
// COUNT redisFetch, each call starting after the last entry returned,
// until it has max entries or d has passed.
func redisConsume(ctx context.Context, c *redis.Client, key string, max int64, d time.Duration) (run, error) {
	start := time.Now()
	deadline := start.Add(d)
	var got, nb int64
	from := "-"
	for got < max && time.Now().Before(deadline) {
		msgs, err := c.XRangeN(ctx, key, from, "+", redisFetch).Result()
		if err != nil {
			return run{}, err
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			got++
			if v, ok := m.Values["v"].(string); ok {
				nb += int64(len(v))
			}
		}
		from = "(" + msgs[len(msgs)-1].ID
	}
	el := time.Since(start)
	return run{records: got, bytes: nb, elapsed: el}, nil
}
