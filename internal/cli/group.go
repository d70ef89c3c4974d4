package cli

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wispbus/wisp/client"
)

func init() { extraCommands = append(extraCommands, newGroupCmd) }

func newGroupCmd() *cobra.Command {
	return groupCmd("group", "List and describe consumer groups",
		newGroupListCmd(), newGroupDescribeCmd())
}

type groupSummaryJSON struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
}

type groupJSON struct {
	Group        string            `json:"group"`
	State        string            `json:"state"`
	ProtocolType string            `json:"protocol_type"`
	Protocol     string            `json:"protocol"`
	Generation   int32             `json:"generation"`
	Members      []groupMemberJSON `json:"members"`
	Offsets      []groupOffsetJSON `json:"offsets"`
	TotalLag     int64             `json:"total_lag"`
}

type groupMemberJSON struct {
	MemberID   string             `json:"member_id"`
	InstanceID string             `json:"instance_id,omitempty"`
	ClientID   string             `json:"client_id"`
	ClientHost string             `json:"client_host"`
	Topics     []string           `json:"topics"`
	Assigned   map[string][]int32 `json:"assigned"`
}

type groupOffsetJSON struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	Committed     int64  `json:"committed"`
	HighWatermark int64  `json:"high_watermark"`
	Lag           int64  `json:"lag"`
	Member        string `json:"member,omitempty"`
}

func newGroupListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups",
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
			groups, err := c.ListGroups(ctx)
			if err != nil {
				return o.explain(err, "", "")
			}
			slices.SortFunc(groups, func(a, b client.GroupSummary) int { return cmp.Compare(a.Group, b.Group) })
			if o.json() {
				out := make([]groupSummaryJSON, 0, len(groups))
				for _, g := range groups {
					out = append(out, groupSummaryJSON{Group: g.Group, State: g.State, ProtocolType: g.ProtocolType})
				}
				return writeJSON(cmd.OutOrStdout(), out)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE")
			for _, g := range groups {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Group, g.State, dash(g.ProtocolType))
			}
			return tw.Flush()
		},
	}
}

func newGroupDescribeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "describe GROUP",
		Short: "Describe a consumer group: state, members and assignments, committed offsets and lag",
		Args:  exactArgs("GROUP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := clientOptsFrom(cmd)
			if err != nil {
				return err
			}
			name := args[0]
			ctx, cancel := o.adminCtx(cmd.Context())
			defer cancel()
			c, err := o.connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			d, err := c.DescribeGroup(ctx, name)
			if err != nil {
				return o.explain(err, "", name)
			}
			if d.State == "Dead" && len(d.Members) == 0 && len(d.Offsets) == 0 {
				return fmt.Errorf("group %q does not exist", name)
			}
			g := toGroupJSON(d)
			// The description lists the partitions the group committed;
			// add the other partitions of the topics its members read, so
			// their lag shows too.
			topics := map[string]bool{}
			for _, m := range d.Members {
				for _, t := range m.Topics {
					topics[t] = true
				}
			}
			if len(topics) > 0 {
				if offs, err := c.GroupOffsets(ctx, name, slices.Sorted(maps.Keys(topics))...); err == nil {
					g.mergeOffsets(offs)
				}
			}
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), g)
			}
			return printGroup(cmd, g)
		},
	}
}

func toGroupJSON(d client.GroupDescription) groupJSON {
	g := groupJSON{Group: d.Group, State: d.State, ProtocolType: d.ProtocolType, Protocol: d.Protocol,
		Generation: d.Generation, Members: []groupMemberJSON{}, Offsets: []groupOffsetJSON{}}
	for _, m := range d.Members {
		gm := groupMemberJSON{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID,
			ClientHost: m.ClientHost, Topics: m.Topics, Assigned: m.Assigned}
		if gm.Topics == nil {
			gm.Topics = []string{}
		}
		if gm.Assigned == nil {
			gm.Assigned = map[string][]int32{}
		}
		g.Members = append(g.Members, gm)
	}
	g.mergeOffsets(d.Offsets)
	return g
}

// mergeOffsets adds offs to g's offsets (an entry for the same partition
// is replaced), keeps them sorted and recomputes the owners and total lag.
func (g *groupJSON) mergeOffsets(offs []client.GroupOffset) {
	type tp struct {
		t string
		p int32
	}
	idx := map[tp]int{}
	for i, o := range g.Offsets {
		idx[tp{o.Topic, o.Partition}] = i
	}
	for _, o := range offs {
		j := groupOffsetJSON{Topic: o.Topic, Partition: o.Partition, Committed: o.Committed,
			HighWatermark: o.HighWatermark, Lag: o.Lag}
		if i, ok := idx[tp{o.Topic, o.Partition}]; ok {
			g.Offsets[i] = j
		} else {
			idx[tp{o.Topic, o.Partition}] = len(g.Offsets)
			g.Offsets = append(g.Offsets, j)
		}
	}
	slices.SortFunc(g.Offsets, func(a, b groupOffsetJSON) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	owner := map[tp]string{}
	for _, m := range g.Members {
		for t, ps := range m.Assigned {
			for _, p := range ps {
				owner[tp{t, p}] = m.MemberID
			}
		}
	}
	g.TotalLag = 0
	for i := range g.Offsets {
		g.Offsets[i].Member = owner[tp{g.Offsets[i].Topic, g.Offsets[i].Partition}]
		g.TotalLag += max(g.Offsets[i].Lag, 0)
	}
}

func printGroup(cmd *cobra.Command, g groupJSON) error {
	w := cmd.OutOrStdout()
	tw := newTable(w)
	fmt.Fprintf(tw, "GROUP\t%s\n", g.Group)
	fmt.Fprintf(tw, "STATE\t%s\n", g.State)
	proto := dash(g.ProtocolType)
	if g.Protocol != "" {
		proto += " (" + g.Protocol + ")"
	}
	fmt.Fprintf(tw, "PROTOCOL\t%s\n", proto)
	fmt.Fprintf(tw, "GENERATION\t%d\n", g.Generation)
	fmt.Fprintf(tw, "MEMBERS\t%d\n", len(g.Members))
	fmt.Fprintf(tw, "TOTAL-LAG\t%d\n", g.TotalLag)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(g.Members) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "MEMBER\tINSTANCE\tCLIENT-ID\tHOST\tASSIGNED")
		for _, m := range g.Members {
			var as []string
			for _, t := range slices.Sorted(maps.Keys(m.Assigned)) {
				as = append(as, t+":"+joinInt32s(slices.Sorted(slices.Values(m.Assigned[t]))))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.MemberID, dash(m.InstanceID), dash(m.ClientID),
				dash(m.ClientHost), dash(strings.Join(as, " ")))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(g.Offsets) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tHIGH-WATERMARK\tLAG\tMEMBER")
		for _, o := range g.Offsets {
			committed := "-"
			if o.Committed >= 0 {
				committed = fmt.Sprint(o.Committed)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\n", o.Topic, o.Partition, committed, o.HighWatermark, o.Lag, dash(o.Member))
		}
		return tw.Flush()
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
