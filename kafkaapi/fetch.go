package kafkaapi

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wispbus/wisp/bus"
)

// handleFetch answers a Fetch at once when it can: enough bytes (MinBytes),
// an error, or MaxWaitMillis 0. Otherwise it long-polls on a goroutine of
// its own, woken by bus.Broker.Watch of every partition asked for, and
// answers when MinBytes is reached or MaxWaitMillis has passed.
//
// Fetch sessions (KIP-227) are not kept: every response says SessionID 0
// ("no session"), so clients send full fetch requests, and an incremental
// request (SessionEpoch > 0) gets FETCH_SESSION_ID_NOT_FOUND.
func handleFetch(cc *call, req *kmsg.FetchRequest) {
	f := &fetch{cc: cc, req: req, topics: map[string]*bus.TopicInfo{}, ids: map[[16]byte]string{}}
	if req.SessionEpoch > 0 {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		cc.finish(resp, kerr.FetchSessionIDNotFound)
		return
	}
	f.resolve()
	resp, ready, watches := f.attempt(req.MaxWaitMillis > 0)
	if ready || req.MaxWaitMillis <= 0 || len(watches) == 0 {
		cc.finish(resp, f.fe.err)
		return
	}
	wait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	if c := cc.c.s.waitCap; c > 0 {
		wait = min(wait, c)
	}
	deadline := cc.start.Add(wait)
	cc.goAsync(func() { f.wait(deadline, resp, watches) })
}

type fetch struct {
	cc     *call
	req    *kmsg.FetchRequest
	topics map[string]*bus.TopicInfo // by name; nil value: unknown topic
	ids    map[[16]byte]string       // v13+: topic id -> name, "" if unknown
	fe     firstErr
}

// resolve looks up every topic of the request once: names (or, v13+, ids)
// and leader epochs.
func (f *fetch) resolve() {
	s := f.cc.c.s
	for _, rt := range f.req.Topics {
		name := rt.Topic
		if f.req.Version >= 13 {
			if _, ok := f.ids[rt.TopicID]; ok {
				continue
			}
			info, err := s.topicByID(rt.TopicID)
			f.ids[rt.TopicID] = info.Name
			if err == nil {
				f.topics[info.Name] = &info
			}
			continue
		}
		if _, ok := f.topics[name]; ok {
			continue
		}
		if info, err := s.b.Topic(name); err == nil {
			f.topics[name] = &info
		} else {
			f.topics[name] = nil
		}
	}
}

// attempt reads every partition once. With watch set, it takes each
// partition's Watch channel before reading it, so that an append landing
// between the read and the wait still wakes the waiter.
func (f *fetch) attempt(watch bool) (resp *kmsg.FetchResponse, ready bool, watches []<-chan struct{}) {
	b := f.cc.c.s.b
	req := f.req
	resp = req.ResponseKind().(*kmsg.FetchResponse)
	f.fe = firstErr{}
	remaining := int64(req.MaxBytes)
	total := int64(0)
	gotData := false
	anyErr := false
	resp.Topics = make([]kmsg.FetchResponseTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		t := kmsg.NewFetchResponseTopic()
		t.Topic, t.TopicID = rt.Topic, rt.TopicID
		name := rt.Topic
		var topicErr error
		if req.Version >= 13 {
			if name = f.ids[rt.TopicID]; name == "" {
				topicErr = fmt.Errorf("%w: %x", kerr.UnknownTopicID, rt.TopicID)
			}
		}
		info := f.topics[name]
		if topicErr == nil && info == nil {
			topicErr = fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, name)
		}
		t.Partitions = make([]kmsg.FetchResponseTopicPartition, 0, len(rt.Partitions))
		for _, rp := range rt.Partitions {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = rp.Partition
			// Empty, not null: kafka-python cannot read a null record set.
			p.RecordBatches = []byte{}
			p.HighWatermark, p.LastStableOffset, p.LogStartOffset = -1, -1, -1
			err := topicErr
			if err == nil {
				err = checkLeaderEpoch(info, rp.Partition, rp.CurrentLeaderEpoch)
			}
			if err == nil && watch {
				var ch <-chan struct{}
				if ch, err = b.Watch(name, rp.Partition); err == nil {
					watches = append(watches, ch)
				}
			}
			if err == nil {
				err = f.readPartition(&p, name, rp, &remaining, &gotData)
			}
			if err != nil {
				p.ErrorCode = f.fe.add(err)
				anyErr = true
			}
			total += int64(len(p.RecordBatches))
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	ready = anyErr || total >= int64(req.MinBytes) && total > 0 || req.MinBytes <= 0
	return resp, ready, watches
}

// readPartition fills p from the log, within the partition's and the
// response's byte limits. Only the first partition with data may exceed
// them, by its first batch (KIP-74), so that a batch larger than the
// limits cannot stall a consumer; later partitions that do not fit get no
// data this time, and their turn comes in the next fetch.
func (f *fetch) readPartition(p *kmsg.FetchResponseTopicPartition, topic string, rp kmsg.FetchRequestTopicPartition, remaining *int64, gotData *bool) error {
	b := f.cc.c.s.b
	limit := min(int64(rp.PartitionMaxBytes), *remaining)
	if *gotData {
		if limit <= 0 {
			part, err := b.Partition(topic, rp.Partition)
			if err != nil {
				return err
			}
			p.HighWatermark = part.HighWatermark()
			p.LastStableOffset = p.HighWatermark
			p.LogStartOffset = part.Log().StartOffset()
			return nil
		}
	}
	res, err := b.Fetch(f.cc.c.ctx, topic, rp.Partition, rp.FetchOffset, int32(max(limit, 1)))
	p.HighWatermark, p.LastStableOffset, p.LogStartOffset = res.HighWatermark, res.LastStableOffset, res.LogStartOffset
	if err != nil {
		if !errors.Is(err, kerr.OffsetOutOfRange) {
			p.HighWatermark, p.LastStableOffset, p.LogStartOffset = -1, -1, -1
		}
		return err
	}
	if len(res.Batches) == 0 || *gotData && int64(len(res.Batches)) > limit {
		return nil
	}
	p.RecordBatches = res.Batches
	*gotData = true
	*remaining -= int64(len(res.Batches))
	return nil
}

// wait is the long poll of handleFetch, on its own goroutine.
func (f *fetch) wait(deadline time.Time, resp *kmsg.FetchResponse, watches []<-chan struct{}) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	ctx := f.cc.c.ctx
	cases := make([]reflect.SelectCase, 0, len(watches)+2)
	for {
		cases = append(cases[:0],
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)})
		for _, w := range watches {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w)})
		}
		chosen, _, _ := reflect.Select(cases)
		switch chosen {
		case 0: // connection or server closing: the answer will not be sent
			f.cc.finish(resp, ctx.Err())
			return
		case 1: // max wait reached: answer with what there is
			resp, _, _ = f.attempt(false)
			f.cc.finish(resp, f.fe.err)
			return
		}
		var ready bool
		resp, ready, watches = f.attempt(true)
		if ready || len(watches) == 0 {
			f.cc.finish(resp, f.fe.err)
			return
		}
	}
}

// checkLeaderEpoch applies KIP-320: a client that knows a newer leader
// epoch than the broker gets UNKNOWN_LEADER_EPOCH (the broker is behind),
// one that knows an older one FENCED_LEADER_EPOCH (the client is behind).
// -1 skips the check.
func checkLeaderEpoch(info *bus.TopicInfo, partition, current int32) error {
	if current < 0 || info == nil {
		return nil
	}
	for _, p := range info.Partitions {
		if p.Partition != partition {
			continue
		}
		switch {
		case current > p.LeaderEpoch:
			return fmt.Errorf("%w: %s/%d: client epoch %d, broker %d", kerr.UnknownLeaderEpoch, info.Name, partition, current, p.LeaderEpoch)
		case current < p.LeaderEpoch:
			return fmt.Errorf("%w: %s/%d: client epoch %d, broker %d", kerr.FencedLeaderEpoch, info.Name, partition, current, p.LeaderEpoch)
		}
		return nil
	}
	return nil
}
