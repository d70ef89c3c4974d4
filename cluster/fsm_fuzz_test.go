package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/wispbus/wisp/bus"
)

// FuzzFSMApply applies arbitrary raft log entries (the fuzz input split at
// newlines, one entry per line) to the metadata FSM, as a node does when
// it replays a log written by another version or a corrupted one. Apply
// must not panic and must always return an applyResult; the result must be
// deterministic (a second FSM fed the same entries ends in the same
// state), a snapshot must restore to the same state, and the Applier must
// have been told exactly the topics of the state.
//
//	go test -run '^$' -fuzz '^FuzzFSMApply$' -fuzztime 30s ./cluster
func FuzzFSMApply(f *testing.F) {
	r := []int32{1, 2, 3}
	fn := Function{Name: "enrich", Manifest: json.RawMessage(`{"input":"a"}`), ModuleSHA256: sha256Hex([]byte("m"))}
	seeds := [][]command{
		{topicCmd("t", pa(0, r, 1, 0, r), pa(1, []int32{2, 3, 1}, 2, 0, []int32{2, 3, 1}))},
		{
			{Op: opRegisterNode, Node: &nodeRecord{ID: 1, QUIC: "127.0.0.1:7071", Rack: "x"}},
			{Op: opRegisterNode, Node: &nodeRecord{ID: 2, QUIC: "127.0.0.1:7072"}},
			{Op: opRemoveNode, Node: &nodeRecord{ID: 2}},
		},
		{
			topicCmd("t", pa(0, r, 1, 0, r)),
			{Op: opAlterISR, Name: "t", Partition: 0, From: 1, LeaderEpoch: 0, ISR: []int32{1, 3}},
			{Op: opUpdatePartition, Name: "t", Partition: 0, LeaderEpoch: 0, Leader: 3, ISR: []int32{3}},
			{Op: opAlterConfigs, Name: "t", Configs: map[string]string{"retention.ms": "", "flush": "os"}, Incremental: true},
			{Op: opAddPartitions, Name: "t", Partitions: []bus.PartitionAssignment{pa(1, r, 1, 0, r)}},
			{Op: opDeleteTopic, Name: "t"},
		},
		{{Op: opAllocatePIDs, N: 1000}, {Op: opAllocatePIDs, N: -1}},
		{{Op: opPutFunction, Function: &fn, Module: []byte("m")}, {Op: opDeleteFunction, Name: "enrich"}},
		{{Op: opCreateTopic, Topic: &bus.TopicState{Name: "empty"}}, {Op: opAddPartitions, Name: "empty"}},
		{{Op: "nope"}},
	}
	for _, cmds := range seeds {
		var buf bytes.Buffer
		for _, c := range cmds {
			b, err := json.Marshal(c)
			if err != nil {
				f.Fatal(err)
			}
			buf.Write(b)
			buf.WriteByte('\n')
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte("{\"op\":\"create_topic\",\"topic\":{\"Name\":\"x\",\"Partitions\":[{\"Partition\":-1}]}}\nnot json\n"))
	f.Add([]byte(`{"op":"alter_isr","name":"x","partition":2147483647}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		entries := bytes.Split(data, []byte{'\n'})
		if len(entries) > 32 {
			entries = entries[:32]
		}
		run := func() (*fsm, *recorder) {
			rec := newRecorder()
			m := newFSM(testLogger(), rec)
			for i, e := range entries {
				if _, ok := m.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: e}).(applyResult); !ok {
					t.Fatalf("entry %d: Apply did not return an applyResult", i)
				}
			}
			if m.applied != uint64(len(entries)) {
				t.Fatalf("applied %d of %d entries", m.applied, len(entries))
			}
			return m, rec
		}
		a, rec := run()
		b, _ := run()
		snapA, snapB := snapshotBytes(t, a), snapshotBytes(t, b)
		if !bytes.Equal(snapA, snapB) {
			t.Fatalf("the same entries gave two states:\n%s\n%s", snapA, snapB)
		}
		var st map[string]bus.TopicState
		a.read(func(s *state) { st = s.Topics })
		if !sameTopics(st, rec.snapshot()) {
			t.Fatalf("applier saw other topics than the state holds")
		}
		c := newFSM(testLogger(), newRecorder())
		if err := c.Restore(io.NopCloser(bytes.NewReader(snapA))); err != nil {
			t.Fatalf("restore of our own snapshot: %v", err)
		}
		if snapC := snapshotBytes(t, c); !bytes.Equal(snapA, snapC) {
			t.Fatalf("snapshot does not restore to the same state:\n%s\n%s", snapA, snapC)
		}
	})
}

func snapshotBytes(t testing.TB, m *fsm) []byte {
	t.Helper()
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return s.(*fsmSnapshot).data
}

// FuzzFSMRestore restores arbitrary snapshot bytes, as a node does with a
// snapshot installed by the leader. Nothing may panic; a snapshot that
// restores snapshots again to bytes that restore to the same state.
//
//	go test -run '^$' -fuzz '^FuzzFSMRestore$' -fuzztime 30s ./cluster
func FuzzFSMRestore(f *testing.F) {
	m := newFSM(testLogger(), newRecorder())
	r := []int32{1, 2}
	fn := Function{Name: "enrich", Manifest: json.RawMessage(`{"input":"a"}`), ModuleSHA256: sha256Hex([]byte("m"))}
	for i, c := range []command{
		topicCmd("t", pa(0, r, 1, 0, r)),
		{Op: opRegisterNode, Node: &nodeRecord{ID: 1, QUIC: "127.0.0.1:7071"}},
		{Op: opPutFunction, Function: &fn, Module: []byte("m")},
		{Op: opAllocatePIDs, N: 10},
	} {
		b, _ := json.Marshal(c)
		m.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: b})
	}
	f.Add(snapshotBytes(f, m))
	f.Add([]byte(`{"nodes":null,"topics":{"x":{"Name":"x","Partitions":null}},"index":3}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"topics":{"x":{"Partitions":[{"Partition":5,"Replicas":[],"Leader":-1}]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a := newFSM(testLogger(), newRecorder())
		if err := a.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			return
		}
		snap := snapshotBytes(t, a)
		b := newFSM(testLogger(), newRecorder())
		if err := b.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
			t.Fatalf("our own snapshot %s does not restore: %v", snap, err)
		}
		if again := snapshotBytes(t, b); !bytes.Equal(snap, again) {
			t.Fatalf("snapshot changed on restore:\n%s\n%s", snap, again)
		}
	})
}

// FuzzControlFrame reads arbitrary bytes as a forwarded request and as a
// controller's response, as the controller and a forwarding node do with
// what a peer sends on the cluster ALPN. Nothing may panic; what decodes
// encodes and decodes back to the same value.
//
//	go test -run '^$' -fuzz '^FuzzControlFrame$' -fuzztime 30s ./cluster
func FuzzControlFrame(f *testing.F) {
	for _, v := range []any{
		request{Op: "create_topic", From: 2, Spec: &bus.TopicSpec{Name: "t", Partitions: 3}},
		request{Op: "alter_isr", Name: "t", Partition: 1, LeaderEpoch: 4, ISR: []int32{1, 2}},
		response{Index: 7, First: 1000},
		response{Code: 6, Msg: "not leader"},
		response{Sentinel: "nope", Msg: "x"},
	} {
		var buf bytes.Buffer
		if err := writeFrame(&buf, v); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, data []byte) {
		var req request
		if err := readFrame(bytes.NewReader(data), &req); err == nil {
			var buf bytes.Buffer
			if err := writeFrame(&buf, req); err != nil {
				t.Fatalf("decoded request does not encode: %v", err)
			}
			var back request
			if err := readFrame(&buf, &back); err != nil {
				t.Fatalf("request round trip: %v", err)
			}
		}
		var resp response
		if err := readFrame(bytes.NewReader(data), &resp); err == nil {
			err := decodeError(resp)
			if (resp.Code != 0 || resp.Sentinel != "" || resp.NotController) && err == nil {
				t.Fatalf("error response %+v decodes to no error", resp)
			}
		}
	})
}

// FuzzFSMOps drives the FSM with sequences of well-formed commands built
// from the fuzz input (8 bytes a command: op, topic, partition, node,
// epoch, leader, ISR bit set, count), which reach far deeper than mutated
// JSON: ISR changes and leader moves on partitions that exist, added
// partitions, deleted and recreated topics. Nothing may panic; after every
// command each topic's partitions are numbered 0..n-1 with
// ReplicationFactor replicas, and the state snapshots and restores to
// itself.
//
//	go test -run '^$' -fuzz '^FuzzFSMOps$' -fuzztime 30s ./cluster
func FuzzFSMOps(f *testing.F) {
	f.Add([]byte{
		2, 0, 2, 1, 0, 1, 0b111, 2, // create t0, 2 partitions
		6, 0, 0, 1, 0, 1, 0b011, 0, // alter_isr t0/0 from 1
		7, 0, 1, 0, 0, 2, 0b010, 0, // update_partition t0/1 leader 2
		5, 0, 2, 0, 0, 1, 0b111, 1, // add partition 2
		3, 0, 0, 0, 0, 0, 0, 0, // delete t0
		8, 0, 0, 0, 0, 0, 0, 9, // allocate producer ids
	})
	f.Add([]byte{2, 1, 1, 1, 0, 3, 0b100, 1, 6, 1, 0, 3, 0, 3, 0b100, 0, 6, 1, 0, 3, 1, 3, 0b110, 0})
	ops := []string{opRegisterNode, opRemoveNode, opCreateTopic, opDeleteTopic, opAlterConfigs,
		opAddPartitions, opAlterISR, opUpdatePartition, opAllocatePIDs, opDeleteFunction}
	replicas := []int32{1, 2, 3}
	set := func(bits byte) []int32 {
		var out []int32
		for i, r := range replicas {
			if bits&(1<<i) != 0 {
				out = append(out, r)
			}
		}
		if bits&0b1000 != 0 {
			out = append(out, 9) // not a replica
		}
		return out
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newFSM(testLogger(), newRecorder())
		var entries [][]byte
		for i := 0; i+8 <= len(data) && i < 8*64; i += 8 {
			d := data[i : i+8]
			name := fmt.Sprintf("t%d", d[1]%3)
			c := command{Op: ops[int(d[0])%len(ops)], Name: name, Partition: int32(d[2]%4) - 1,
				From: int32(d[3] % 4), LeaderEpoch: int32(d[4]%4) - 1, Leader: int32(d[5]%4) - 1,
				ISR: set(d[6]), N: int64(d[7]) - 1}
			switch c.Op {
			case opRegisterNode, opRemoveNode:
				c.Node = &nodeRecord{ID: int32(d[3] % 4), QUIC: "127.0.0.1:1"}
			case opCreateTopic:
				n := int(d[7] % 4)
				ts := bus.TopicState{Name: name, ReplicationFactor: int16(len(replicas)), Configs: map[string]string{"k": name}}
				for p := range n {
					ts.Partitions = append(ts.Partitions, pa(int32(p), replicas, int32(d[5]%3)+1, 0, set(d[6])))
				}
				c.Topic = &ts
			case opAddPartitions:
				first := int32(d[2] % 4)
				for p := range int32(d[7] % 3) {
					c.Partitions = append(c.Partitions, pa(first+p, replicas, 1, 0, replicas))
				}
			case opAlterConfigs:
				c.Configs, c.Incremental = map[string]string{"k": "", "j": "v"}, d[7]%2 == 0
			}
			b, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, b)
			if _, ok := m.Apply(&raft.Log{Index: uint64(len(entries)), Type: raft.LogCommand, Data: b}).(applyResult); !ok {
				t.Fatalf("command %d: Apply did not return an applyResult", len(entries))
			}
			m.read(func(s *state) {
				for name, ts := range s.Topics {
					for i, p := range ts.Partitions {
						if p.Partition != int32(i) || len(p.Replicas) != int(ts.ReplicationFactor) {
							t.Fatalf("after %s: %s partition %d is %+v", c.Op, name, i, p)
						}
					}
				}
			})
		}
		snap := snapshotBytes(t, m)
		back := newFSM(testLogger(), newRecorder())
		if err := back.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
			t.Fatalf("restore: %v", err)
		}
		if again := snapshotBytes(t, back); !bytes.Equal(snap, again) {
			t.Fatalf("snapshot changed on restore")
		}
	})
}
