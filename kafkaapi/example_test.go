package kafkaapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/kafkaapi"
)

// A broker with a Kafka listener, used by a Kafka client.
func Example() {
	dir, err := os.MkdirTemp("", "wisp-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.DiscardHandler)

	bcfg := bus.DefaultConfig()
	bcfg.DataDir, bcfg.Logger = dir, quiet
	b, err := bus.Open(bcfg)
	if err != nil {
		panic(err)
	}
	defer b.Close()

	cfg := kafkaapi.DefaultConfig()
	cfg.Addr, cfg.Logger = "127.0.0.1:0", quiet // a free port; the default is 127.0.0.1:9092
	srv, err := kafkaapi.New(cfg, b)
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer srv.Close(ctx) // before b.Close: deferred calls run last first

	// The topic is created on first use (bus.Config.AutoCreateTopics), for
	// clients that allow it in Metadata requests as franz-go does with
	// AllowAutoTopicCreation.
	producer, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr().String()), kgo.AllowAutoTopicCreation())
	if err != nil {
		panic(err)
	}
	if err := producer.ProduceSync(ctx, &kgo.Record{Topic: "greetings", Value: []byte("hello, wisp")}).FirstErr(); err != nil {
		panic(err)
	}
	producer.Close()

	consumer, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr().String()),
		kgo.ConsumeTopics("greetings"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		panic(err)
	}
	defer consumer.Close()
	fs := consumer.PollFetches(ctx)
	fs.EachRecord(func(r *kgo.Record) { fmt.Printf("%s/%d@%d: %s\n", r.Topic, r.Partition, r.Offset, r.Value) })
	// Output: greetings/0@0: hello, wisp
}
