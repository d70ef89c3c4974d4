package cli

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wispbus/wisp/client"
)

func init() { extraCommands = append(extraCommands, newClusterCmd) }

func newClusterCmd() *cobra.Command {
	return groupCmd("cluster", "Show the state of the cluster", newClusterStatusCmd())
}

type clusterJSON struct {
	ConnectedTo string     `json:"connected_to"`
	NodeID      int32      `json:"node_id"`
	Version     string     `json:"version"`
	RTTMillis   float64    `json:"rtt_ms"`
	Nodes       []nodeJSON `json:"nodes"`
	Topics      int        `json:"topics"`
	Partitions  int        `json:"partitions"`
}

type nodeJSON struct {
	NodeID int32             `json:"node_id"`
	Addrs  map[string]string `json:"addrs"`
}

func newClusterStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the nodes with their addresses, the server version and topic and partition counts",
		Args:  noArgs,
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
			rtt, err := c.Ping(ctx)
			if err != nil {
				return o.explain(err, "", "")
			}
			info, err := c.ClusterInfo(ctx)
			if err != nil {
				return o.explain(err, "", "")
			}
			topics, err := c.ListTopics(ctx)
			if err != nil {
				return o.explain(err, "", "")
			}
			out := clusterJSON{ConnectedTo: strings.Join(o.servers, ","), NodeID: info.NodeID, Version: info.Version,
				RTTMillis: float64(rtt.Microseconds()) / 1000, Nodes: []nodeJSON{}, Topics: len(topics)}
			for _, t := range topics {
				out.Partitions += len(t.Partitions)
			}
			nodes := slices.Clone(info.Nodes)
			slices.SortFunc(nodes, func(a, b client.NodeInfo) int { return cmp.Compare(a.NodeID, b.NodeID) })
			for _, n := range nodes {
				addrs := n.Addrs
				if addrs == nil {
					addrs = map[string]string{}
				}
				out.Nodes = append(out.Nodes, nodeJSON{NodeID: n.NodeID, Addrs: addrs})
			}
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			tw := newTable(w)
			fmt.Fprintf(tw, "VERSION\t%s\n", out.Version)
			fmt.Fprintf(tw, "NODES\t%d\n", len(out.Nodes))
			fmt.Fprintf(tw, "CONNECTED\tnode %d via %s (rtt %v)\n", out.NodeID, out.ConnectedTo, rtt.Round(10*time.Microsecond))
			fmt.Fprintf(tw, "TOPICS\t%d\n", out.Topics)
			fmt.Fprintf(tw, "PARTITIONS\t%d\n", out.Partitions)
			if err := tw.Flush(); err != nil {
				return err
			}
			// One column per listener name any node has, quic first.
			names := map[string]bool{}
			for _, n := range out.Nodes {
				for k := range n.Addrs {
					names[k] = true
				}
			}
			cols := slices.SortedFunc(maps.Keys(names), func(a, b string) int {
				return cmp.Or(cmp.Compare(listenerRank(a), listenerRank(b)), cmp.Compare(a, b))
			})
			fmt.Fprintln(w)
			fmt.Fprint(tw, "NODE")
			for _, c := range cols {
				fmt.Fprint(tw, "\t"+strings.ToUpper(c))
			}
			fmt.Fprintln(tw)
			for _, n := range out.Nodes {
				id := fmt.Sprint(n.NodeID)
				if n.NodeID == out.NodeID {
					id += "*"
				}
				fmt.Fprint(tw, id)
				for _, c := range cols {
					fmt.Fprint(tw, "\t"+dash(n.Addrs[c]))
				}
				fmt.Fprintln(tw)
			}
			return tw.Flush()
		},
	}
}

func listenerRank(name string) int {
	switch name {
	case "quic":
		return 0
	case "kafka":
		return 1
	case "http":
		return 2
	}
	return 3
}
