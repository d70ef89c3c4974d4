package client

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

func members(ids ...string) []memberSub {
	var out []memberSub
	for _, id := range ids {
		out = append(out, memberSub{id: id, topics: []string{"a", "b"}})
	}
	return out
}

func counts(a assignment) map[string]int {
	out := map[string]int{}
	for m, ts := range a {
		for _, ps := range ts {
			out[m] += len(ps)
		}
	}
	return out
}

// every checks that each partition of parts is assigned exactly once.
func every(t *testing.T, a assignment, parts map[string]int32) {
	t.Helper()
	seen := map[topicPart]string{}
	for m, ts := range a {
		for topic, ps := range ts {
			for _, p := range ps {
				tp := topicPart{topic, p}
				if prev, ok := seen[tp]; ok {
					t.Fatalf("%v assigned to %s and %s", tp, prev, m)
				}
				seen[tp] = m
			}
		}
	}
	for topic, n := range parts {
		for p := int32(0); p < n; p++ {
			if _, ok := seen[topicPart{topic, p}]; !ok {
				t.Fatalf("%s/%d not assigned", topic, p)
			}
		}
	}
}

func TestAssignors(t *testing.T) {
	parts := map[string]int32{"a": 6, "b": 3}
	for _, proto := range []string{RangeAssignor, RoundRobinAssignor, StickyAssignor} {
		t.Run(proto, func(t *testing.T) {
			for n := 1; n <= 10; n++ {
				var ids []string
				for i := range n {
					ids = append(ids, fmt.Sprintf("m%02d", i))
				}
				a := assign(proto, members(ids...), parts)
				every(t, a, parts)
				if proto == RangeAssignor {
					continue // range balances per topic, not overall
				}
				c := counts(a)
				lo, hi := 1<<30, 0
				for _, id := range ids {
					lo, hi = min(lo, c[id]), max(hi, c[id])
				}
				if hi-lo > 1 {
					t.Fatalf("%d members: unbalanced %v", n, c)
				}
			}
		})
	}
}

// Kafka's RangeAssignor on its documented example: two members, two
// topics of three partitions: C0 gets t0p0, t0p1, t1p0, t1p1; C1 gets
// t0p2, t1p2.
func TestRangeMatchesKafka(t *testing.T) {
	ms := []memberSub{{id: "C0", topics: []string{"t0", "t1"}}, {id: "C1", topics: []string{"t0", "t1"}}}
	a := assign(RangeAssignor, ms, map[string]int32{"t0": 3, "t1": 3})
	if !slices.Equal(a["C0"]["t0"], []int32{0, 1}) || !slices.Equal(a["C0"]["t1"], []int32{0, 1}) ||
		!slices.Equal(a["C1"]["t0"], []int32{2}) || !slices.Equal(a["C1"]["t1"], []int32{2}) {
		t.Fatalf("range: %v", a)
	}
}

func TestStickyKeepsOwned(t *testing.T) {
	parts := map[string]int32{"a": 6}
	ms := []memberSub{{id: "x", topics: []string{"a"}}, {id: "y", topics: []string{"a"}}, {id: "z", topics: []string{"a"}}}
	first := assign(StickyAssignor, ms, parts)
	every(t, first, parts)
	// z leaves: x and y keep everything they had and split z's two.
	ms2 := []memberSub{{id: "x", topics: []string{"a"}, owned: first["x"], generation: 1},
		{id: "y", topics: []string{"a"}, owned: first["y"], generation: 1}}
	second := assign(StickyAssignor, ms2, parts)
	every(t, second, parts)
	for _, id := range []string{"x", "y"} {
		for _, p := range first[id]["a"] {
			if !slices.Contains(second[id]["a"], p) {
				t.Fatalf("%s lost a/%d: %v -> %v", id, p, first, second)
			}
		}
	}
	if c := counts(second); c["x"] != 3 || c["y"] != 3 {
		t.Fatalf("unbalanced %v", c)
	}
}

func TestMetadataAssignmentCodec(t *testing.T) {
	owned := map[string][]int32{"a": {1, 3}, "b": {0}}
	m, err := decodeMetadata("id", "", encodeMetadata([]string{"b", "a"}, owned, 7))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.topics, []string{"a", "b"}) || m.generation != 7 || !maps.EqualFunc(m.owned, owned, slices.Equal) {
		t.Fatalf("metadata round trip: %+v", m)
	}
	got, err := decodeAssignment(encodeAssignment(owned))
	if err != nil || !maps.EqualFunc(got, owned, slices.Equal) {
		t.Fatalf("assignment round trip: %v %v", got, err)
	}
}
