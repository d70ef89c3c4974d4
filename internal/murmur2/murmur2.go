// Package murmur2 is Kafka's default-partitioner hash, shared by every part
// of wisp that places keyed records (client, HTTP produce, function outputs),
// so that the same key lands on the same partition as with Java Kafka.
package murmur2

// Partition is the partition Kafka's default partitioner picks for key
// among n partitions: (murmur2(key) & 0x7fffffff) % n.
func Partition(key []byte, n int32) int32 {
	return (Sum(key) & 0x7fffffff) % n
}

// Sum is Kafka's 32-bit murmur2 hash (org.apache.kafka.common.utils.
// Utils.murmur2). Java's int arithmetic wraps like uint32 and its >>> is a
// logical shift, so the bits match.
func Sum(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	i := 0
	for ; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch n - i {
	case 3:
		h ^= uint32(data[i+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[i+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[i])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}
