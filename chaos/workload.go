package chaos

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Workload is the clients of one run: idempotent acks=all producers and a
// consumer group, all through the Kafka listeners, recording a History.
type Workload struct {
	Topic string
	H     *History

	producers []*kgo.Client
	consumers []*kgo.Client
	stopProd  chan struct{}
	prodWG    sync.WaitGroup
	consCtx   context.Context
	stopCons  context.CancelFunc
	consWG    sync.WaitGroup

	mu       sync.Mutex
	maxPoll  map[int32]int64 // highest offset any consumer received, per partition
	pollErrs atomic.Int64
}

// producerOpts are the options of every producer: acks from all in-sync
// replicas, idempotence (franz-go's default), retries until
// deliveryTimeout, small linger, quick metadata refresh on failover.
func producerOpts(deliveryTimeout time.Duration) []kgo.Opt {
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(deliveryTimeout),
		kgo.RequestTimeoutOverhead(2 * time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.MetadataMinAge(200 * time.Millisecond),
		kgo.ProducerLinger(2 * time.Millisecond),
		kgo.MaxBufferedRecords(2000),
	}
}

// StartWorkload starts nProd producers (one record every interval each,
// round-robin over the partitions) and nCons group consumers.
func StartWorkload(brokers []string, topic, group string, nProd, nCons int, interval time.Duration) (*Workload, error) {
	w := &Workload{Topic: topic, H: &History{}, stopProd: make(chan struct{}), maxPoll: map[int32]int64{}}
	for i := 0; i < nProd; i++ {
		opts := append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner())}, producerOpts(20*time.Second)...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			w.Close()
			return nil, err
		}
		w.producers = append(w.producers, cl)
		name := fmt.Sprintf("p%d", i+1)
		w.prodWG.Add(1)
		go func() {
			defer w.prodWG.Done()
			produceLoop(cl, name, topic, -1, w.H, w.stopProd, interval)
		}()
	}
	w.consCtx, w.stopCons = context.WithCancel(context.Background())
	for i := 0; i < nCons; i++ {
		name := fmt.Sprintf("c%d", i+1)
		assign := func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			for _, ps := range m {
				for _, p := range ps {
					w.H.Add(Op{Process: name, Kind: Assign, Topic: topic, Partition: p, Offset: -1})
				}
			}
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(time.Second),
			kgo.FetchMaxWait(500*time.Millisecond), kgo.AutoCommitInterval(time.Second),
			kgo.RequestTimeoutOverhead(2*time.Second), kgo.MetadataMinAge(200*time.Millisecond),
			kgo.OnPartitionsAssigned(assign), kgo.OnPartitionsRevoked(assign), kgo.OnPartitionsLost(assign))
		if err != nil {
			w.Close()
			return nil, err
		}
		w.consumers = append(w.consumers, cl)
		w.consWG.Add(1)
		go func() {
			defer w.consWG.Done()
			w.consumeLoop(cl, name)
		}()
	}
	return w, nil
}

// produceLoop sends name:1, name:2, ... until stop. partition < 0 lets
// the client's partitioner choose.
func produceLoop(cl *kgo.Client, name, topic string, partition int32, h *History, stop <-chan struct{}, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for seq := int64(1); ; seq++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		id := RecordID{Producer: name, Seq: seq}
		rec := &kgo.Record{Topic: topic, Value: []byte(id.String())}
		if partition >= 0 {
			rec.Partition = partition
		}
		h.Add(Op{Process: name, Kind: Send, Outcome: Invoke, ID: id, Topic: topic, Partition: -1, Offset: -1})
		cl.Produce(context.Background(), rec, func(r *kgo.Record, err error) {
			if err != nil {
				// Whether a failed produce was written is unknown to the
				// client (a timeout may hide a success): info, not fail.
				h.Add(Op{Process: name, Kind: Send, Outcome: Info, ID: id, Topic: topic, Partition: r.Partition, Offset: -1, Err: err.Error()})
				return
			}
			h.Add(Op{Process: name, Kind: Send, Outcome: OK, ID: id, Topic: topic, Partition: r.Partition, Offset: r.Offset})
		})
	}
}

func (w *Workload) consumeLoop(cl *kgo.Client, name string) {
	for w.consCtx.Err() == nil {
		ctx, cancel := context.WithTimeout(w.consCtx, 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(string, int32, error) { w.pollErrs.Add(1) })
		fs.EachRecord(func(r *kgo.Record) {
			id, ok := ParseRecordID(r.Value)
			if !ok {
				return
			}
			w.H.Add(Op{Process: name, Kind: Poll, Outcome: OK, ID: id, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset})
			w.mu.Lock()
			if m, ok := w.maxPoll[r.Partition]; !ok || r.Offset > m {
				w.maxPoll[r.Partition] = r.Offset
			}
			w.mu.Unlock()
		})
	}
}

// StopProducers stops sending, waits up to d for what is in flight, and
// closes the producers (whatever is still unresolved ends as info).
func (w *Workload) StopProducers(d time.Duration) {
	select {
	case <-w.stopProd:
		return
	default:
	}
	close(w.stopProd)
	w.prodWG.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for _, cl := range w.producers {
		wg.Add(1)
		go func() { defer wg.Done(); _ = cl.Flush(ctx) }()
	}
	wg.Wait()
	for _, cl := range w.producers {
		cl.Close()
	}
}

// Drain waits up to d until the consumers have received every offset below
// hw of each partition, and reports whether they did.
func (w *Workload) Drain(hw map[int32]int64, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		w.mu.Lock()
		done := true
		for p, h := range hw {
			if m, ok := w.maxPoll[p]; h > 0 && (!ok || m < h-1) {
				done = false
			}
		}
		w.mu.Unlock()
		if done {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Close stops everything.
func (w *Workload) Close() {
	w.StopProducers(5 * time.Second)
	if w.stopCons != nil {
		w.stopCons()
	}
	w.consWG.Wait()
	for _, cl := range w.consumers {
		cl.Close()
	}
	w.consumers = nil
}

// PinnedProducer is a producer that can reach one broker only: its dialer
// refuses every other address, so it cannot be redirected to a new leader.
type PinnedProducer struct {
	cl   *kgo.Client
	stop chan struct{}
	wg   sync.WaitGroup
}

// StartPinnedProducer sends name:1, name:2, ... to one partition through
// broker addr only.
func StartPinnedProducer(addr, topic string, partition int32, name string, h *History, interval time.Duration) (*PinnedProducer, error) {
	dial := func(ctx context.Context, network, host string) (net.Conn, error) {
		if host != addr {
			return nil, fmt.Errorf("pinned producer: %s is not %s", host, addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, host)
	}
	opts := append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.Dialer(dial), kgo.RecordPartitioner(kgo.ManualPartitioner())}, producerOpts(time.Hour)...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	p := &PinnedProducer{cl: cl, stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		produceLoop(cl, name, topic, partition, h, p.stop, interval)
	}()
	return p, nil
}

// Close stops the producer; what is unresolved ends as info.
func (p *PinnedProducer) Close() {
	close(p.stop)
	p.wg.Wait()
	p.cl.Close()
}
