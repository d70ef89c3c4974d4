package kafkaapi

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wispbus/wisp/bus"
)

// topicCache looks each topic of a request up once.
type topicCache struct {
	b *bus.Broker
	m map[string]*bus.TopicInfo
}

func newTopicCache(b *bus.Broker) *topicCache {
	return &topicCache{b: b, m: map[string]*bus.TopicInfo{}}
}

// get returns the topic, or the error for it (kerr.UnknownTopicOrPartition).
func (c *topicCache) get(name string) (*bus.TopicInfo, error) {
	if info, ok := c.m[name]; ok {
		if info == nil {
			return nil, fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, name)
		}
		return info, nil
	}
	info, err := c.b.Topic(name)
	if err != nil {
		c.m[name] = nil
		return nil, err
	}
	c.m[name] = &info
	return &info, nil
}

// partition returns one partition of a topic or kerr.UnknownTopicOrPartition.
func (c *topicCache) partition(topic string, partition int32) (*bus.TopicInfo, *bus.PartitionInfo, error) {
	info, err := c.get(topic)
	if err != nil {
		return nil, nil, err
	}
	for i := range info.Partitions {
		if info.Partitions[i].Partition == partition {
			return info, &info.Partitions[i], nil
		}
	}
	return info, nil, fmt.Errorf("%w: %s/%d", kerr.UnknownTopicOrPartition, topic, partition)
}

// handleListOffsets resolves -2 (earliest), -1 (latest: the high
// watermark) and timestamps. v7+ (-3, the offset of the largest timestamp)
// is not advertised: the bus keeps no per-partition maximum timestamp.
func handleListOffsets(cc *call, req *kmsg.ListOffsetsRequest) (*kmsg.ListOffsetsResponse, error) {
	b := cc.c.s.b
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	topics := newTopicCache(b)
	var fe firstErr
	for _, rt := range req.Topics {
		t := kmsg.NewListOffsetsResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewListOffsetsResponseTopicPartition()
			p.Partition = rp.Partition
			p.Timestamp, p.Offset, p.LeaderEpoch = -1, -1, -1
			info, pi, err := topics.partition(rt.Topic, rp.Partition)
			if err == nil {
				err = checkLeaderEpoch(info, rp.Partition, rp.CurrentLeaderEpoch)
			}
			if err == nil && rp.Timestamp < bus.Earliest {
				err = fmt.Errorf("%w: special timestamp %d is not supported", kerr.InvalidRequest, rp.Timestamp)
			}
			var off, ts int64
			if err == nil {
				off, ts, err = b.ListOffset(rt.Topic, rp.Partition, rp.Timestamp)
			}
			if err != nil {
				p.ErrorCode = fe.add(err)
				t.Partitions = append(t.Partitions, p)
				continue
			}
			p.Offset, p.Timestamp, p.LeaderEpoch = off, ts, pi.LeaderEpoch
			if req.Version == 0 {
				// v0 answers with a list of offsets (at most
				// MaxNumOffsets); one is all Kafka clients ask for.
				if off >= 0 && rp.MaxNumOffsets > 0 {
					p.OldStyleOffsets = []int64{off}
				} else {
					p.OldStyleOffsets = []int64{}
				}
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, fe.err
}

// handleOffsetForLeaderEpoch answers with the end offset of the asked
// leader epoch. The bus keeps one leader epoch per partition and no epoch
// history: an epoch up to the current one ends at the log end offset, a
// newer one is unknown (-1/-1, as Kafka answers).
func handleOffsetForLeaderEpoch(cc *call, req *kmsg.OffsetForLeaderEpochRequest) (*kmsg.OffsetForLeaderEpochResponse, error) {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	topics := newTopicCache(cc.c.s.b)
	var fe firstErr
	for _, rt := range req.Topics {
		t := kmsg.NewOffsetForLeaderEpochResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			p.Partition = rp.Partition
			p.LeaderEpoch, p.EndOffset = -1, -1
			info, pi, err := topics.partition(rt.Topic, rp.Partition)
			if err == nil && req.Version >= 2 {
				err = checkLeaderEpoch(info, rp.Partition, rp.CurrentLeaderEpoch)
			}
			switch {
			case err != nil:
				p.ErrorCode = fe.add(err)
			case rp.LeaderEpoch <= pi.LeaderEpoch:
				p.LeaderEpoch, p.EndOffset = pi.LeaderEpoch, pi.EndOffset
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, fe.err
}
