package kafkaapi

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wispbus/wisp/bus"
)

// handleProduce appends each partition's batches with bus.Produce. It runs
// on the reader goroutine, so two pipelined produces to one partition are
// appended in request order (idempotent producers rely on it); the
// partitions of one request are appended concurrently, so they share
// group commits instead of waiting for one fsync after another.
func handleProduce(cc *call, req *kmsg.ProduceRequest) {
	b := cc.c.s.b
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var fe firstErr

	var topErr error
	switch {
	case req.TransactionID != nil:
		topErr = fmt.Errorf("%w: %w", kerr.TransactionalIDAuthorizationFailed, errTransactions)
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		topErr = fmt.Errorf("%w: acks=%d (want 0, 1 or -1)", kerr.InvalidRequiredAcks, req.Acks)
	}

	type job struct {
		topic   string
		records []byte
		out     *kmsg.ProduceResponseTopicPartition
	}
	var jobs []job
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		t := &resp.Topics[i]
		*t = kmsg.NewProduceResponseTopic()
		t.Topic = rt.Topic
		t.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		terr := topErr
		if terr == nil {
			terr = ensureTopic(cc, rt.Topic)
		}
		for j := range rt.Partitions {
			p := &t.Partitions[j]
			*p = kmsg.NewProduceResponseTopicPartition()
			p.Partition = rt.Partitions[j].Partition
			p.BaseOffset, p.LogAppendTime, p.LogStartOffset = -1, -1, -1
			if terr != nil {
				setProduceErr(p, &fe, terr)
				continue
			}
			jobs = append(jobs, job{topic: rt.Topic, records: rt.Partitions[j].Records, out: p})
		}
	}

	run := func(j job) {
		res, err := produceOne(cc.c.ctx, b, j.topic, j.out.Partition, j.records, bus.Acks(req.Acks))
		if err != nil {
			j.out.ErrorCode = errCode(err)
			j.out.ErrorMessage = errMessage(err)
			return
		}
		j.out.BaseOffset, j.out.LogAppendTime, j.out.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStartOffset
	}
	if len(jobs) == 1 {
		run(jobs[0])
	} else {
		var wg sync.WaitGroup
		for _, j := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				run(j)
			}()
		}
		wg.Wait()
	}
	for _, j := range jobs {
		fe.code(j.out.ErrorCode)
	}

	if req.Acks == 0 {
		if fe.err != nil {
			cc.c.log.Debug("kafka: acks=0 produce failed", "err", fe.err)
		}
		cc.finishNoResponse(fe.err)
		return
	}
	cc.finish(resp, fe.err)
}

func setProduceErr(p *kmsg.ProduceResponseTopicPartition, fe *firstErr, err error) {
	p.ErrorCode = fe.add(err)
	p.ErrorMessage = errMessage(err)
}

// ensureTopic checks that a topic exists, creating it when the broker
// auto-creates topics.
func ensureTopic(cc *call, name string) error {
	b := cc.c.s.b
	if b.Config().AutoCreateTopics {
		_, err := b.EnsureTopic(cc.c.ctx, name)
		return err
	}
	_, err := b.Topic(name)
	return err
}

func produceOne(ctx context.Context, b *bus.Broker, topic string, partition int32, records []byte, acks bus.Acks) (bus.ProduceResult, error) {
	if err := checkMagic(records); err != nil {
		return bus.ProduceResult{}, err
	}
	return b.Produce(ctx, topic, partition, records, acks)
}

// checkMagic rejects the message sets of Kafka before 0.11 (magic 0 and 1)
// with UNSUPPORTED_FOR_MESSAGE_FORMAT: wisp stores RecordBatch v2 only and
// never converts. Every entry, v0/v1 message or v2 batch, starts with an
// int64 offset and an int32 size, and has its magic byte at 16. The bus
// verifies everything else (lengths, CRC).
func checkMagic(records []byte) error {
	for len(records) > 0 {
		if len(records) < 17 {
			return fmt.Errorf("%w: truncated record batch (%d bytes)", kerr.CorruptMessage, len(records))
		}
		switch magic := int8(records[16]); magic {
		case 2:
		case 0, 1:
			return fmt.Errorf("%w: message format v%d (magic %d) is not supported, only RecordBatch v2 (Kafka 0.11+ clients)",
				kerr.UnsupportedForMessageFormat, magic, magic)
		default:
			return fmt.Errorf("%w: unknown magic byte %d", kerr.CorruptMessage, magic)
		}
		size := int64(int32(binary.BigEndian.Uint32(records[8:]))) + 12
		if size < 17 || size > int64(len(records)) {
			return fmt.Errorf("%w: record batch length %d past the %d bytes sent", kerr.CorruptMessage, size-12, len(records))
		}
		records = records[size:]
	}
	return nil
}
