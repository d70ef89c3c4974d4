package e2e_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wispbus/wisp/internal/testnode"
)

// BenchmarkClusterProduce measures acks=all produce of 100 B records with
// franz-go (idempotent, through the Kafka listeners) into a 3-partition
// topic: on one node (RF=1) and on three nodes on this machine (RF=3,
// min.insync.replicas=2), in the same run, so the ratio is what the
// replication costs here. It reports records/s and the p50/p99 latency
// from send to acknowledgement.
//
//	go test -run '^$' -bench ClusterProduce -benchtime 200000x ./e2e
func BenchmarkClusterProduce(b *testing.B) {
	for _, bc := range []struct {
		name  string
		nodes int
	}{{"single-RF1", 1}, {"3nodes-RF3", 3}} {
		b.Run(bc.name, func(b *testing.B) {
			var brokers []string
			var n1 *testnode.Node
			if bc.nodes == 1 {
				n1 = testnode.Start(b, "--functions=false")
				brokers = []string{n1.Kafka}
			} else {
				c := testnode.StartCluster(b, bc.nodes, "--functions=false")
				n1, brokers = c.Node(1), c.KafkaBrokers()
			}
			mustWisp(b, n1, "", "topic", "create", "bench", "-p", "3", "-r", strconv.Itoa(bc.nodes))
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.ProducerLinger(time.Millisecond), kgo.MaxBufferedRecords(1<<16), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			value := make([]byte, 100)
			// Warm up: metadata, connections, producer id.
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "bench", Value: value}).FirstErr(); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, b.N)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var firstErr error
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				sent := time.Now()
				wg.Add(1)
				cl.Produce(context.Background(), &kgo.Record{Topic: "bench", Value: value}, func(_ *kgo.Record, err error) {
					lat[i] = time.Since(sent)
					if err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
					}
					wg.Done()
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if firstErr != nil {
				b.Fatal(firstErr)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
