package httpapi

import (
	"github.com/wispbus/wisp/internal/murmur2"
	"math/rand/v2"
	"testing"

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
		if got := murmur2.Sum(c.in); got != c.want {
			t.Errorf("murmur2(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestKeyPartition(t *testing.T) {
	// toPositive(-790332482) = 1357151166; 1357151166 % 50 = 16.
	if got := keyPartition([]byte("foobar"), 50); got != 16 {
		t.Errorf("keyPartition(foobar, 50) = %d, want 16", got)
	}
	// The sign bit is masked, not negated (Math.abs would give another
	// partition for negative hashes): 0x7fffffff & -973932308 = 1173551340.
	if got := keyPartition([]byte("21"), 7); got != 1173551340%7 {
		t.Errorf("keyPartition(21, 7) = %d, want %d", got, 1173551340%7)
	}
}

// franz-go's default partitioner documents itself as Kafka's (murmur2 of
// the key, positive, modulo); it is an independent implementation to check
// ours against on random keys of every length remainder.
func TestKeyPartitionMatchesFranzGo(t *testing.T) {
	p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		key := make([]byte, rng.IntN(40))
		for j := range key {
			key[j] = byte(rng.UintN(256))
		}
		n := 1 + rng.IntN(64)
		want := p.Partition(&kgo.Record{Key: key}, n)
		if got := keyPartition(key, int32(n)); int(got) != want {
			t.Fatalf("case %d: keyPartition(%x, %d) = %d, franz-go %d", i, key, n, got, want)
		}
	}
}
