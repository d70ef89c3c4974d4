package httpapi

import "github.com/wispbus/wisp/internal/murmur2"

// keyPartition is the partition Java Kafka's default partitioner picks for
// a non-null key: toPositive(murmur2(key)) % n, where toPositive masks the
// sign bit (it is not Math.abs).
func keyPartition(key []byte, n int32) int32 {
	return murmur2.Partition(key, n)
}
