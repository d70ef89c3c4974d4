package cli

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	"github.com/spf13/cobra"

	"github.com/wispbus/wisp/client"
)

func init() { extraCommands = append(extraCommands, newTopicCmd) }

func newTopicCmd() *cobra.Command {
	return groupCmd("topic", "Create, list, describe, configure and delete topics",
		newTopicCreateCmd(), newTopicListCmd(), newTopicDescribeCmd(), newTopicDeleteCmd(),
		newTopicAlterConfigCmd(), newTopicAddPartitionsCmd())
}

// topicJSON is a topic in --format json output.
type topicJSON struct {
	Name              string            `json:"name"`
	ID                string            `json:"id"`
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs"`
	Effective         map[string]string `json:"effective_configs,omitempty"`
	Partitions        []partitionJSON   `json:"partitions"`
}

type partitionJSON struct {
	Partition      int32   `json:"partition"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leader_epoch"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	LogStartOffset int64   `json:"log_start_offset"`
	HighWatermark  int64   `json:"high_watermark"`
	SizeBytes      int64   `json:"size_bytes"`
}

// topicSummaryJSON is one entry of topic list --format json.
type topicSummaryJSON struct {
	Name              string `json:"name"`
	PartitionCount    int    `json:"partition_count"`
	ReplicationFactor int16  `json:"replication_factor"`
	Records           int64  `json:"records"`
	SizeBytes         int64  `json:"size_bytes"`
}

func uuidString(id [16]byte) string {
	h := hex.EncodeToString(id[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func toTopicJSON(t client.TopicInfo, effective bool) topicJSON {
	j := topicJSON{Name: t.Name, ID: uuidString(t.ID), ReplicationFactor: t.ReplicationFactor,
		Configs: t.Configs, Partitions: make([]partitionJSON, 0, len(t.Partitions))}
	if j.Configs == nil {
		j.Configs = map[string]string{}
	}
	if effective {
		j.Effective = t.Effective
	}
	for _, p := range t.Partitions {
		j.Partitions = append(j.Partitions, partitionJSON{Partition: p.Partition, Leader: p.Leader,
			LeaderEpoch: p.LeaderEpoch, Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR),
			LogStartOffset: p.LogStartOffset, HighWatermark: p.HighWatermark, SizeBytes: p.SizeBytes})
	}
	return j
}

func nonNil(xs []int32) []int32 {
	if xs == nil {
		return []int32{}
	}
	return xs
}

func topicTotals(t client.TopicInfo) (records, size int64) {
	for _, p := range t.Partitions {
		records += p.HighWatermark - p.LogStartOffset
		size += p.SizeBytes
	}
	return records, size
}

func newTopicCreateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic",
		Example: `  wisp topic create orders -p 6
  wisp topic create audit -c retention.ms=-1 -c cleanup.policy=compact`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := clientOptsFrom(cmd)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			spec := client.TopicSpec{Name: args[0]}
			spec.Partitions, _ = f.GetInt32("partitions")
			spec.ReplicationFactor, _ = f.GetInt16("replicas")
			raw, _ := f.GetStringArray("topic-config")
			kvs, err := parseKVs(cmd, "topic-config", raw)
			if err != nil {
				return err
			}
			if len(kvs) > 0 {
				spec.Configs = map[string]string{}
				for _, kv := range kvs {
					spec.Configs[kv[0]] = kv[1]
				}
			}
			ctx, cancel := o.adminCtx(cmd.Context())
			defer cancel()
			c, err := o.connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			info, err := c.CreateTopic(ctx, spec)
			if err != nil {
				return o.explain(err, spec.Name, "")
			}
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), toTopicJSON(info, false))
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "created topic %q: %d partitions, replication factor %d\n",
				info.Name, len(info.Partitions), info.ReplicationFactor)
			return err
		},
	}
	f := cmd.Flags()
	f.Int32P("partitions", "p", 0, "number of partitions (default: the server's --default-partitions)")
	f.Int16P("replicas", "r", 0, "replication factor (default: the server's, 1 on a single node)")
	f.StringArrayP("topic-config", "c", nil, "topic config key=value, e.g. retention.ms=3600000; repeatable")
	return cmd
}

func newTopicListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := clientOptsFrom(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := o.adminCtx(cmd.Context())
			defer cancel()
			c, err := o.connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			topics, err := c.ListTopics(ctx)
			if err != nil {
				return o.explain(err, "", "")
			}
			if o.json() {
				out := make([]topicSummaryJSON, 0, len(topics))
				for _, t := range topics {
					recs, size := topicTotals(t)
					out = append(out, topicSummaryJSON{Name: t.Name, PartitionCount: len(t.Partitions),
						ReplicationFactor: t.ReplicationFactor, Records: recs, SizeBytes: size})
				}
				return writeJSON(cmd.OutOrStdout(), out)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tPARTITIONS\tREPLICAS\tRECORDS\tSIZE")
			for _, t := range topics {
				recs, size := topicTotals(t)
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", t.Name, len(t.Partitions), t.ReplicationFactor, recs, humanBytes(size))
			}
			return tw.Flush()
		},
	}
}

func newTopicDescribeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Describe a topic: partitions with leader, replicas, ISR, offsets and size; configs",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := clientOptsFrom(cmd)
			if err != nil {
				return err
			}
			all, _ := cmd.Flags().GetBool("all-configs")
			ctx, cancel := o.adminCtx(cmd.Context())
			defer cancel()
			c, err := o.connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			t, err := c.DescribeTopic(ctx, args[0])
			if err != nil {
				return o.explain(err, args[0], "")
			}
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), toTopicJSON(t, true))
			}
			return printTopic(cmd, t, all)
		},
	}
	cmd.Flags().BoolP("all-configs", "a", false, "list every config with its value in force, not only the topic's overrides")
	return cmd
}

func printTopic(cmd *cobra.Command, t client.TopicInfo, allConfigs bool) error {
	w := cmd.OutOrStdout()
	recs, size := topicTotals(t)
	tw := newTable(w)
	fmt.Fprintf(tw, "NAME\t%s\n", t.Name)
	fmt.Fprintf(tw, "ID\t%s\n", uuidString(t.ID))
	fmt.Fprintf(tw, "PARTITIONS\t%d\n", len(t.Partitions))
	fmt.Fprintf(tw, "REPLICATION\t%d\n", t.ReplicationFactor)
	fmt.Fprintf(tw, "RECORDS\t%d\n", recs)
	fmt.Fprintf(tw, "SIZE\t%s\n", humanBytes(size))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	if allConfigs {
		fmt.Fprintln(tw, "CONFIG\tVALUE\tSOURCE")
		for _, k := range slices.Sorted(maps.Keys(t.Effective)) {
			src := "default"
			if _, ok := t.Configs[k]; ok {
				src = "topic"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", k, t.Effective[k], src)
		}
	} else {
		fmt.Fprintln(tw, "CONFIG\tVALUE")
		for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
			fmt.Fprintf(tw, "%s\t%s\n", k, t.Configs[k])
		}
		if len(t.Configs) == 0 {
			fmt.Fprintln(tw, "(no overrides; -a lists every config)\t")
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	fmt.Fprintln(tw, "PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR\tLOG-START\tHIGH-WATERMARK\tSIZE")
	for _, p := range t.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%d\t%d\t%s\n", p.Partition, p.Leader, p.LeaderEpoch,
			joinInt32s(p.Replicas), joinInt32s(p.ISR), p.LogStartOffset, p.HighWatermark, humanBytes(p.SizeBytes))
	}
	return tw.Flush()
}

func newTopicDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a topic, its records and the offsets committed on it",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := clientOptsFrom(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := o.adminCtx(cmd.Context())
			defer cancel()
			c, err := o.connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.DeleteTopic(ctx, args[0]); err != nil {
				return o.explain(err, args[0], "")
			}
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]string{"deleted": args[0]})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "deleted topic %q\n", args[0])
			return err
		},
	}
}

func newTopicAlterConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alter-config NAME -c key=value...",
		Short: "Set or remove (key=) topic config overrides",
		Example: `  wisp topic alter-config orders -c retention.ms=86400000
  wisp topic alter-config orders -c retention.ms=   # back to the default`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := clientOptsFrom(cmd)
			if err != nil {
				return err
			}
			raw, _ := cmd.Flags().GetStringArray("topic-config")
			kvs, err := parseKVs(cmd, "topic-config", raw)
			if err != nil {
				return err
			}
			if len(kvs) == 0 {
				return usageError(cmd, "nothing to change: give -c key=value")
			}
			configs := map[string]string{}
			for _, kv := range kvs {
				configs[kv[0]] = kv[1]
			}
			ctx, cancel := o.adminCtx(cmd.Context())
			defer cancel()
			c, err := o.connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.AlterTopicConfigs(ctx, args[0], configs, true); err != nil {
				return o.explain(err, args[0], "")
			}
			t, err := c.DescribeTopic(ctx, args[0])
			if err != nil {
				return o.explain(err, args[0], "")
			}
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), toTopicJSON(t, true))
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "altered topic %q; its overrides are now:\n", t.Name)
			tw := newTable(w)
			for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
				fmt.Fprintf(tw, "  %s\t%s\n", k, t.Configs[k])
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringArrayP("topic-config", "c", nil, "config key=value to set, key= to remove; repeatable")
	return cmd
}

func newTopicAddPartitionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add-partitions NAME -p TOTAL",
		Short: "Grow a topic to TOTAL partitions (keys move to new partitions)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := clientOptsFrom(cmd)
			if err != nil {
				return err
			}
			total, _ := cmd.Flags().GetInt32("partitions")
			if total <= 0 {
				return usageError(cmd, "give the new total with -p N")
			}
			ctx, cancel := o.adminCtx(cmd.Context())
			defer cancel()
			c, err := o.connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.AddPartitions(ctx, args[0], total); err != nil {
				return o.explain(err, args[0], "")
			}
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"topic": args[0], "partition_count": total})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "topic %q now has %d partitions\n", args[0], total)
			return err
		},
	}
	cmd.Flags().Int32P("partitions", "p", 0, "the new total number of partitions")
	return cmd
}
