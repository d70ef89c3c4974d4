package client

import (
	"context"
	"time"
)

// CreateTopic creates a topic. It fails with kerr.TopicAlreadyExists,
// kerr.InvalidTopicException, kerr.InvalidPartitions,
// kerr.InvalidReplicationFactor or kerr.InvalidConfig.
func (c *Client) CreateTopic(ctx context.Context, spec TopicSpec) (TopicInfo, error) {
	return c.createTopic(ctx, spec)
}

// DeleteTopic deletes a topic, its records and the offsets committed on it.
func (c *Client) DeleteTopic(ctx context.Context, name string) error {
	return c.deleteTopic(ctx, name)
}

// ListTopics describes every topic, sorted by name.
func (c *Client) ListTopics(ctx context.Context) ([]TopicInfo, error) {
	return c.listTopics(ctx)
}

// DescribeTopic describes one topic, or fails with
// kerr.UnknownTopicOrPartition.
func (c *Client) DescribeTopic(ctx context.Context, name string) (TopicInfo, error) {
	return c.describeTopic(ctx, name)
}

// AlterTopicConfigs changes a topic's config overrides. With incremental,
// keys in configs are set and keys mapped to "" are removed (back to the
// default); without it, configs replace every override.
func (c *Client) AlterTopicConfigs(ctx context.Context, name string, configs map[string]string, incremental bool) error {
	return c.alterTopicConfigs(ctx, name, configs, incremental)
}

// AddPartitions grows a topic to total partitions. Keys move: a key's
// partition is its hash modulo the partition count.
func (c *Client) AddPartitions(ctx context.Context, name string, total int32) error {
	return c.addPartitions(ctx, name, total)
}

// ListOffsets resolves at (AtStart, AtEnd, AtTime; At is returned as is)
// for every partition of topic.
func (c *Client) ListOffsets(ctx context.Context, topic string, at Offset) ([]PartitionOffset, error) {
	return c.listOffsets(ctx, topic, at)
}

// ClusterInfo describes the node the client is connected to and every node
// it knows, with their listener addresses and the server version.
func (c *Client) ClusterInfo(ctx context.Context) (ClusterInfo, error) {
	return c.clusterInfo(ctx)
}

// ListGroups lists the consumer groups the cluster knows.
func (c *Client) ListGroups(ctx context.Context) ([]GroupSummary, error) {
	return c.listGroups(ctx)
}

// DescribeGroup describes a group: state, members with their assignments,
// and committed offsets with lag.
func (c *Client) DescribeGroup(ctx context.Context, group string) (GroupDescription, error) {
	return c.describeGroup(ctx, group)
}

// GroupOffsets returns a group's committed offsets with lag. With no
// topics, every partition the group has committed; with topics, every
// partition of those topics (Committed -1 where nothing is committed).
func (c *Client) GroupOffsets(ctx context.Context, group string, topics ...string) ([]GroupOffset, error) {
	return c.groupOffsets(ctx, group, topics...)
}

// CommitGroupOffsets sets a group's committed offsets from outside the
// group (for example to reset a group that has no members). offsets maps
// topic -> partition -> offset (the next offset to consume).
func (c *Client) CommitGroupOffsets(ctx context.Context, group string, offsets map[string]map[int32]int64) error {
	return c.commitGroupOffsets(ctx, group, offsets)
}

// Ping measures one round trip to the server.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) { return c.ping(ctx) }
