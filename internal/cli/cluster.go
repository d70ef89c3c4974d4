package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/cluster"
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
	// Cluster is the metadata's view (cluster nodes only).
	Cluster *cluster.Status `json:"cluster,omitempty"`
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
			if len(info.Status) > 0 {
				var st cluster.Status
				if err := json.Unmarshal(info.Status, &st); err == nil {
					out.Cluster = &st
				}
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
			if st := out.Cluster; st != nil {
				fmt.Fprintf(tw, "CONTROLLER\t%s\n", nodeOrNone(st.ControllerID))
				fmt.Fprintf(tw, "RAFT\t%s, term %d, commit %d, applied %d\n", st.RaftState, st.Term, st.CommitIndex, st.AppliedIndex)
				fmt.Fprintf(tw, "OFFLINE\t%d partitions without a leader\n", st.OfflinePartitions)
				fmt.Fprintf(tw, "UNDER-REPLICATED\t%d partitions with a short ISR\n", st.UnderReplicatedPartitions)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if st := out.Cluster; st != nil {
				fmt.Fprintln(w)
				fmt.Fprint(tw, "NODE\tGOSSIP\tRAFT\tRACK\tQUIC\tKAFKA\tHTTP\n")
				for _, n := range st.Nodes {
					id := fmt.Sprint(n.ID)
					if n.Controller {
						id += " (controller)"
					}
					if n.ID == out.NodeID {
						id += "*"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, dash(n.Gossip), dash(n.Raft), dash(n.Rack), dash(n.QUIC), dash(n.Kafka), dash(n.HTTP))
				}
				return tw.Flush()
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

func nodeOrNone(id int32) string {
	if id < 0 {
		return "none"
	}
	return fmt.Sprintf("node %d", id)
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
