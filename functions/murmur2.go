package functions

import "github.com/wispbus/wisp/internal/murmur2"

// keyPartition is Kafka's default partition for a key among n partitions.
func keyPartition(key []byte, n int32) int32 {
	return murmur2.Partition(key, n)
}
