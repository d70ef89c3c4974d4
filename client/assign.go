package client

import (
	"cmp"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumerProtocolType is Kafka's protocol type for consumer groups; member
// metadata and assignments are kmsg.ConsumerMemberMetadata and
// kmsg.ConsumerMemberAssignment, so Java, librdkafka, franz-go and wisp
// consumers can share a group.
const consumerProtocolType = "consumer"

// memberSub is one member's subscription as the leader sees it.
type memberSub struct {
	id         string
	instanceID string
	topics     []string
	owned      map[string][]int32
	generation int32
}

type topicPart struct {
	topic     string
	partition int32
}

func compareTopicPart(a, b topicPart) int {
	if c := cmp.Compare(a.topic, b.topic); c != 0 {
		return c
	}
	return cmp.Compare(a.partition, b.partition)
}

// assignment is member id -> topic -> partitions.
type assignment map[string]map[string][]int32

func (a assignment) add(member, topic string, p int32) {
	m := a[member]
	if m == nil {
		m = map[string][]int32{}
		a[member] = m
	}
	m[topic] = append(m[topic], p)
}

// assign runs a client-side assignor. partitions maps each subscribed topic
// to its partition count (topics missing from it are skipped).
func assign(protocol string, members []memberSub, partitions map[string]int32) assignment {
	members = slices.Clone(members)
	slices.SortFunc(members, func(a, b memberSub) int { return cmp.Compare(a.id, b.id) })
	out := assignment{}
	for _, m := range members {
		out[m.id] = map[string][]int32{}
	}
	switch protocol {
	case RoundRobinAssignor:
		roundRobinAssign(out, members, partitions)
	case StickyAssignor:
		stickyAssign(out, members, partitions)
	default:
		rangeAssign(out, members, partitions)
	}
	for _, m := range out {
		for t := range m {
			slices.Sort(m[t])
		}
	}
	return out
}

func subscribed(m memberSub, topic string) bool { return slices.Contains(m.topics, topic) }

// rangeAssign is Kafka's RangeAssignor: per topic, members in id order get
// contiguous ranges, the first (n % members) one partition more.
func rangeAssign(out assignment, members []memberSub, partitions map[string]int32) {
	for _, topic := range slices.Sorted(maps.Keys(partitions)) {
		var subs []memberSub
		for _, m := range members {
			if subscribed(m, topic) {
				subs = append(subs, m)
			}
		}
		if len(subs) == 0 {
			continue
		}
		n := int(partitions[topic])
		per, extra := n/len(subs), n%len(subs)
		next := 0
		for i, m := range subs {
			k := per
			if i < extra {
				k++
			}
			for j := 0; j < k; j++ {
				out.add(m.id, topic, int32(next))
				next++
			}
		}
	}
}

// roundRobinAssign is Kafka's RoundRobinAssignor: every partition of every
// topic in order, dealt to the members in turn, skipping members not
// subscribed to the partition's topic.
func roundRobinAssign(out assignment, members []memberSub, partitions map[string]int32) {
	if len(members) == 0 {
		return
	}
	i := 0
	for _, tp := range allPartitions(partitions) {
		for tries := 0; tries < len(members); tries++ {
			m := members[i%len(members)]
			i++
			if subscribed(m, tp.topic) {
				out.add(m.id, tp.topic, tp.partition)
				break
			}
		}
	}
}

func allPartitions(partitions map[string]int32) []topicPart {
	var all []topicPart
	for t, n := range partitions {
		for p := int32(0); p < n; p++ {
			all = append(all, topicPart{t, p})
		}
	}
	slices.SortFunc(all, compareTopicPart)
	return all
}

// stickyAssign balances partitions over members while moving as few as
// possible: every member keeps what it owned (if still subscribed and
// still valid; a partition claimed by two members goes to the one with the
// newer generation) up to its fair share, then unowned partitions go to the
// least loaded subscribed member, then partitions move from the most to the
// least loaded member until counts differ by at most one wherever
// subscriptions allow.
func stickyAssign(out assignment, members []memberSub, partitions map[string]int32) {
	if len(members) == 0 {
		return
	}
	all := allPartitions(partitions)
	load := map[string]int{}
	owner := map[topicPart]string{}
	// Fair share when every member can take every partition; members with
	// narrower subscriptions are balanced by the moving pass below.
	maxShare := (len(all) + len(members) - 1) / len(members)
	byGen := slices.Clone(members)
	slices.SortStableFunc(byGen, func(a, b memberSub) int { return cmp.Compare(b.generation, a.generation) })
	for _, m := range byGen {
		var owned []topicPart
		for t, ps := range m.owned {
			for _, p := range ps {
				owned = append(owned, topicPart{t, p})
			}
		}
		slices.SortFunc(owned, compareTopicPart)
		for _, tp := range owned {
			if n, ok := partitions[tp.topic]; !ok || tp.partition >= n || !subscribed(m, tp.topic) {
				continue
			}
			if _, taken := owner[tp]; taken || load[m.id] >= maxShare {
				continue
			}
			owner[tp] = m.id
			load[m.id]++
		}
	}
	leastLoaded := func(topic string) string {
		best := ""
		for _, m := range members {
			if !subscribed(m, topic) {
				continue
			}
			if best == "" || load[m.id] < load[best] {
				best = m.id
			}
		}
		return best
	}
	for _, tp := range all {
		if _, ok := owner[tp]; ok {
			continue
		}
		if id := leastLoaded(tp.topic); id != "" {
			owner[tp] = id
			load[id]++
		}
	}
	// Move partitions from over- to under-loaded members.
	for moved := true; moved; {
		moved = false
		for _, tp := range all {
			from, ok := owner[tp]
			if !ok {
				continue
			}
			to := leastLoaded(tp.topic)
			if to != "" && load[from] > load[to]+1 {
				owner[tp] = to
				load[from]--
				load[to]++
				moved = true
			}
		}
	}
	for _, tp := range all {
		if id, ok := owner[tp]; ok {
			out.add(id, tp.topic, tp.partition)
		}
	}
}

// encodeMetadata is this member's ConsumerMemberMetadata (version 2: topics,
// owned partitions and generation, which the sticky assignor uses).
func encodeMetadata(topics []string, owned map[string][]int32, generation int32) []byte {
	md := kmsg.NewConsumerMemberMetadata()
	md.Version = 2
	md.Topics = slices.Sorted(slices.Values(topics))
	for _, t := range slices.Sorted(maps.Keys(owned)) {
		op := kmsg.NewConsumerMemberMetadataOwnedPartition()
		op.Topic = t
		op.Partitions = slices.Sorted(slices.Values(owned[t]))
		md.OwnedPartitions = append(md.OwnedPartitions, op)
	}
	md.Generation = generation
	return md.AppendTo(nil)
}

// decodeMetadata reads a member's ConsumerMemberMetadata, of any version.
func decodeMetadata(id, instanceID string, b []byte) (memberSub, error) {
	var md kmsg.ConsumerMemberMetadata
	if err := md.ReadFrom(b); err != nil {
		return memberSub{}, err
	}
	m := memberSub{id: id, instanceID: instanceID, topics: md.Topics, generation: -1, owned: map[string][]int32{}}
	if md.Version >= 2 {
		m.generation = md.Generation
	}
	for _, op := range md.OwnedPartitions {
		m.owned[op.Topic] = append(m.owned[op.Topic], op.Partitions...)
	}
	return m, nil
}

func encodeAssignment(a map[string][]int32) []byte {
	as := kmsg.NewConsumerMemberAssignment()
	as.Version = 0
	for _, t := range slices.Sorted(maps.Keys(a)) {
		at := kmsg.NewConsumerMemberAssignmentTopic()
		at.Topic = t
		at.Partitions = a[t]
		as.Topics = append(as.Topics, at)
	}
	return as.AppendTo(nil)
}

func decodeAssignment(b []byte) (map[string][]int32, error) {
	out := map[string][]int32{}
	if len(b) == 0 {
		return out, nil
	}
	var as kmsg.ConsumerMemberAssignment
	if err := as.ReadFrom(b); err != nil {
		return nil, err
	}
	for _, t := range as.Topics {
		out[t.Topic] = append(out[t.Topic], t.Partitions...)
	}
	return out, nil
}
