package client_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/transport"
)

// server is the address of the in-process node the examples talk to; a
// real program would use the address of `wisp serve` (127.0.0.1:7070).
var server string

// TestMain starts one in-process node (broker + QUIC server on a free
// port) for the examples.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wisp-example-")
	if err != nil {
		log.Fatal(err)
	}
	bcfg := bus.DefaultConfig()
	bcfg.DataDir = dir
	bcfg.Logger = slog.New(slog.DiscardHandler)
	b, err := bus.Open(bcfg)
	if err != nil {
		log.Fatal(err)
	}
	tcfg := transport.DefaultConfig()
	tcfg.Addr = "127.0.0.1:0"
	tcfg.DataDir = dir
	tcfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := transport.NewServer(tcfg, b)
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	server = srv.Addr().String()
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = srv.Close(ctx)
	cancel()
	_ = b.Close()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func Example() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Servers(server))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	rec := &client.Record{Topic: "greetings", Key: []byte("alice"), Value: []byte("hello")}
	if err := c.ProduceSync(ctx, rec); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("written to %s/%d at offset %d\n", rec.Topic, rec.Partition, rec.Offset)

	cons, err := c.NewConsumer(ctx, client.Topics("greetings"))
	if err != nil {
		log.Fatal(err)
	}
	defer cons.Close(ctx)
	for r, err := range cons.Records(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s says %s\n", r.Key, r.Value)
		break
	}
	// Output:
	// written to greetings/0 at offset 0
	// alice says hello
}

func ExampleClient_Produce() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Servers(server),
		client.Linger(10*time.Millisecond), client.Compression(client.Zstd))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CreateTopic(ctx, client.TopicSpec{Name: "clicks", Partitions: 4}); err != nil {
		log.Fatal(err)
	}
	for i := range 1000 {
		c.Produce(ctx, &client.Record{Topic: "clicks", Key: []byte(fmt.Sprintf("user-%d", i%10)), Value: []byte("/home")},
			func(r *client.Record, err error) {
				if err != nil {
					log.Printf("%s: %v", r, err)
				}
			})
	}
	if err := c.Flush(ctx); err != nil { // waits for every record's answer
		log.Fatal(err)
	}
	// A key always goes to the partition Java Kafka would pick.
	fmt.Println("user-3 is on partition", client.KeyPartition([]byte("user-3"), 4))
	// Output: user-3 is on partition 3
}

func ExampleConsumer_Records() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Servers(server))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	var recs []*client.Record
	for _, v := range []string{"created", "paid", "shipped"} {
		recs = append(recs, &client.Record{Topic: "order-42", Value: []byte(v)})
	}
	if err := c.ProduceSync(ctx, recs...); err != nil {
		log.Fatal(err)
	}

	// A member of group "audit": offsets are committed every 5s and on
	// Close, which also leaves the group.
	cons, err := c.NewConsumer(ctx, client.Topics("order-42"), client.Group("audit"))
	if err != nil {
		log.Fatal(err)
	}
	seen := 0
	for r, err := range cons.Records(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.Offset, string(r.Value))
		if seen++; seen == 3 {
			break
		}
	}
	if err := cons.Close(ctx); err != nil {
		log.Fatal(err)
	}
	offs, err := c.GroupOffsets(ctx, "audit", "order-42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("committed", offs[0].Committed, "lag", offs[0].Lag)
	// Output:
	// 0 created
	// 1 paid
	// 2 shipped
	// committed 3 lag 0
}

func ExampleConsumer_Seek() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Servers(server))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		r := &client.Record{Topic: "ticks", Value: []byte(fmt.Sprint("tick ", i)), Timestamp: start.Add(time.Duration(i) * time.Hour)}
		if err := c.ProduceSync(ctx, r); err != nil {
			log.Fatal(err)
		}
	}
	// Replay from 02:00: event sourcing by time.
	cons, err := c.NewConsumer(ctx, client.Topics("ticks"), client.StartOffset(client.AtTime(start.Add(2*time.Hour))))
	if err != nil {
		log.Fatal(err)
	}
	defer cons.Close(ctx)
	for r, err := range cons.Records(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(r.Value), r.Timestamp.UTC().Format(time.Kitchen))
		break
	}
	// And back to the very start.
	if err := cons.Seek(ctx, "ticks", 0, client.AtStart()); err != nil {
		log.Fatal(err)
	}
	for r, err := range cons.Records(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(r.Value))
		break
	}
	// Output:
	// tick 2 2:00AM
	// tick 0
}

func ExampleClient_CreateTopic() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Servers(server))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	info, err := c.CreateTopic(ctx, client.TopicSpec{Name: "accounts", Partitions: 3,
		Configs: map[string]string{"cleanup.policy": "compact"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Name, len(info.Partitions), info.Effective["cleanup.policy"])
	ci, err := c.ClusterInfo(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("node", ci.NodeID)
	// Output:
	// accounts 3 compact
	// node 1
}
