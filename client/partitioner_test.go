package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Vectors of Apache Kafka's UtilsTest.testMurmur2
// (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java).
func TestMurmur2KafkaVectors(t *testing.T) {
	cases := []struct {
		in   []byte
		want int32
	}{
		{[]byte("21"), -973932308},
		{[]byte("foobar"), -790332482},
		{[]byte("a-little-bit-long-string"), -985981536},
		{[]byte("a-little-bit-longer-string"), -1486304829},
		{[]byte("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971},
		{[]byte{'a', 'b', 'c'}, 479470107},
	}
	for _, c := range cases {
		if got := Murmur2(c.in); got != c.want {
			t.Errorf("Murmur2(%q) = %d, want %d", c.in, got, c.want)
		}
	}
	// toPositive masks the sign bit (not Math.abs): 0x7fffffff & -790332482 = 1357151166.
	if got := KeyPartition([]byte("foobar"), 50); got != 1357151166%50 {
		t.Errorf("KeyPartition(foobar, 50) = %d", got)
	}
}

// franz-go's default partitioner is an independent implementation of
// Kafka's key partitioning to check ours against, on random keys of every
// length remainder.
func TestKeyPartitionMatchesFranzGo(t *testing.T) {
	p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		key := make([]byte, rng.IntN(40))
		for j := range key {
			key[j] = byte(rng.UintN(256))
		}
		n := 1 + rng.IntN(64)
		if got, want := KeyPartition(key, int32(n)), p.Partition(&kgo.Record{Key: key}, n); int(got) != want {
			t.Fatalf("case %d: KeyPartition(%x, %d) = %d, franz-go %d", i, key, n, got, want)
		}
	}
}

func TestPartitioners(t *testing.T) {
	rr := RoundRobinPartitioner()
	for i := range 10 {
		if got := rr.Partition(&Record{Topic: "a", Key: []byte("k")}, 4); got != int32(i%4) {
			t.Fatalf("round robin %d: %d", i, got)
		}
	}
	if got := ManualPartitioner().Partition(&Record{Partition: 3}, 5); got != 3 {
		t.Fatalf("manual: %d", got)
	}
	sp := KafkaPartitioner().(*stickyPartitioner)
	first := sp.Partition(&Record{Topic: "t"}, 8)
	for range 100 {
		if p := sp.Partition(&Record{Topic: "t"}, 8); p != first {
			t.Fatalf("sticky moved before the batch closed: %d then %d", first, p)
		}
	}
	sp.onBatchClosed("t", first)
	if p := sp.Partition(&Record{Topic: "t"}, 8); p == first {
		t.Fatalf("sticky stayed on %d after its batch closed", p)
	}
}

// Keys land on the partition Java Kafka would pick, end to end: the
// broker reports each record's partition, which must equal KeyPartition.
func TestKeysLandOnKafkaPartitions(t *testing.T) {
	n := startNode(t, map[string]string{"flush": "os"})
	ctx := testCtx(t, 30*time.Second)
	c := n.client(t)
	if _, err := c.CreateTopic(ctx, TopicSpec{Name: "keys", Partitions: 7}); err != nil {
		t.Fatal(err)
	}
	var recs []*Record
	for i := range 500 {
		recs = append(recs, &Record{Topic: "keys", Key: []byte(fmt.Sprintf("user-%d", i%97)), Value: []byte("x")})
	}
	if err := c.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	k, err := c.NewConsumer(ctx, Topics("keys"))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(context.Background())
	got := 0
	for rec, err := range k.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if want := KeyPartition(rec.Key, 7); rec.Partition != want {
			t.Fatalf("key %s on partition %d, Kafka puts it on %d", rec.Key, rec.Partition, want)
		}
		if got++; got == len(recs) {
			break
		}
	}
}
