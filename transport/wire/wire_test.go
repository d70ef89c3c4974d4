package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// samples holds one filled-in message of every request and response type.
func samples() []Message {
	tm := TopicMeta{Name: "t", Err: Err{Code: 3, Message: "m"}, ID: [16]byte{1, 2}, ReplicationFactor: 1,
		Configs: map[string]string{"a": "1", "b": "2"}, Effective: map[string]string{"c": "3"},
		Partitions: []PartitionMeta{{Partition: 1, Leader: 1, Replicas: []int32{1}, ISR: []int32{1}, LogStartOffset: 2,
			HighWatermark: 3, EndOffset: 4, SizeBytes: 5, RecordsIn: 6, BytesIn: 7, RecordsOut: 8, BytesOut: 9}}}
	fp := FetchedPartition{Topic: "t", Partition: 2, Err: Err{Code: 1, Message: "x"}, HighWatermark: 9, LogStartOffset: 1, Batches: []byte{1, 2, 3}}
	nodes := []Node{{NodeID: 1, Addrs: map[string]string{"quic": "127.0.0.1:7070"}}}
	return append(append(functionSamples(), replicaSamples()...), []Message{
		&ProduceRequest{Corr: 7, Acks: -1, TimeoutMs: 1000, Topic: "t", Partition: 3, Batches: []byte("batch")},
		&ProduceResponse{Corr: 7, Err: Err{Code: 45, Message: "oops"}, BaseOffset: 1, LastOffset: 2, LogAppendTime: -1, LogStartOffset: 0, Duplicate: true},
		&InitProducerIDRequest{},
		&InitProducerIDResponse{ProducerID: 42, Epoch: 1},
		&FetchRequest{MaxWaitMs: 100, MinBytes: 1, MaxBytes: 1 << 20, Partitions: []FetchPartition{{Topic: "t", Partition: 1, Offset: 5, MaxBytes: 10}}},
		&FetchResponse{Partitions: []FetchedPartition{fp, {Topic: "u"}}},
		&FetchSessionRequest{MaxBytes: 1 << 20, Partitions: []FetchPartition{{Topic: "t", Offset: 1}, {Topic: "u", Partition: 4}}},
		&FetchPush{FetchedPartition: fp},
		&ListOffsetsRequest{Partitions: []ListOffsetsPartition{{Topic: "t", Partition: -1, Timestamp: -2}}},
		&ListOffsetsResponse{Partitions: []ListedOffset{{Topic: "t", Partition: 0, Offset: 5, Timestamp: -1}}},
		&MetadataRequest{Topics: []string{"a", "b"}, AutoCreate: true},
		&MetadataResponse{NodeID: 1, Nodes: nodes, Topics: []TopicMeta{tm}},
		&CreateTopicRequest{Name: "t", Partitions: 3, ReplicationFactor: 1, Configs: map[string]string{"flush": "os"}},
		&CreateTopicResponse{Topic: tm},
		&DeleteTopicRequest{Name: "t"},
		&AlterConfigsRequest{Name: "t", Configs: map[string]string{"retention.ms": ""}, Incremental: true},
		&AddPartitionsRequest{Name: "t", Total: 9},
		&SimpleResponse{Key: APIHeartbeat, Err: Err{Code: 27, Message: "rebalance"}},
		&ClusterInfoRequest{},
		&ClusterInfoResponse{NodeID: 1, Version: "v1", Nodes: nodes, Status: []byte(`{"ControllerID":1}`)},
		&JoinGroupRequest{Group: "g", MemberID: "m", InstanceID: "i", ClientID: "c", ProtocolType: "consumer",
			Protocols: []GroupProtocol{{Name: "range", Metadata: []byte{0, 1}}, {Name: "sticky"}}, SessionTimeoutMs: 10000,
			RebalanceTimeoutMs: 60000, RequireKnownMemberID: true},
		&JoinGroupResponse{Generation: 3, ProtocolType: "consumer", Protocol: "range", LeaderID: "m", MemberID: "m",
			Members: []GroupMember{{MemberID: "m", ClientHost: "/127.0.0.1", Metadata: []byte{1}}}},
		&SyncGroupRequest{Group: "g", MemberID: "m", Generation: 3, Assignments: []MemberAssignment{{MemberID: "m", Assignment: []byte{9}}}},
		&SyncGroupResponse{Assignment: []byte{9}},
		&HeartbeatRequest{Group: "g", MemberID: "m", Generation: 3},
		&LeaveGroupRequest{Group: "g", Members: []LeaveMember{{MemberID: "m"}, {InstanceID: "i"}}},
		&LeaveGroupResponse{Members: []Err{{}, {Code: 25, Message: "unknown"}}},
		&OffsetCommitRequest{Group: "g", MemberID: "m", Generation: 3, Offsets: []CommittedOffset{{Topic: "t", Partition: 1, Offset: 10, LeaderEpoch: -1, Metadata: "md"}}},
		&OffsetFetchRequest{Group: "g", Partitions: []TopicPartition{{Topic: "t", Partition: 1}}},
		&OffsetFetchResponse{Offsets: []CommittedOffset{{Topic: "t", Partition: 1, Offset: 10}}},
		&ListGroupsRequest{},
		&ListGroupsResponse{Groups: []GroupListing{{Group: "g", ProtocolType: "consumer", State: "Stable"}}},
		&DescribeGroupRequest{Group: "g"},
		&DescribeGroupResponse{Group: "g", State: "Stable", ProtocolType: "consumer", Protocol: "range", Generation: 3,
			Members: []GroupMember{{MemberID: "m", Assignment: []byte{1}}},
			Offsets: []GroupOffsetLag{{Topic: "t", Partition: 1, Committed: 5, HighWatermark: 9, LogStartOffset: 0, Lag: 4}}},
		&GroupOffsetsRequest{Group: "g", Topics: []string{"t"}},
		&GroupOffsetsResponse{Offsets: []GroupOffsetLag{{Topic: "t", Committed: -1, HighWatermark: 3, Lag: 3}}},
		&ErrorFrame{Err: Err{Code: 42, Message: "bad"}, StreamCode: StreamCodeMalformed},
	}...)
}

func isRequest(m Message) bool {
	r := NewRequest(m.API())
	return r != nil && reflect.TypeOf(r) == reflect.TypeOf(m)
}

func fresh(m Message) Message {
	if isRequest(m) {
		return NewRequest(m.API())
	}
	return NewResponse(m.API())
}

func TestRoundTripEveryMessage(t *testing.T) {
	for _, m := range samples() {
		t.Run(fmt.Sprintf("%s-%T", m.API(), m), func(t *testing.T) {
			frame := AppendFrame(nil, m)
			f, err := ReadFrame(bytes.NewReader(frame), nil, DefaultMaxFrame)
			if err != nil {
				t.Fatal(err)
			}
			if f.API != m.API() || f.Version != Version {
				t.Fatalf("header %v %d", f.API, f.Version)
			}
			got := fresh(m)
			if got == nil {
				t.Fatalf("no decoder for %s", m.API())
			}
			if err := Decode(f, got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, m)
			}
			// Every strict prefix fails to decode, never panics.
			for i := 0; i < len(f.Payload); i++ {
				if err := DecodePayload(f.Payload[:i], fresh(m)); err == nil && i < len(f.Payload) {
					t.Fatalf("prefix of %d/%d bytes decoded", i, len(f.Payload))
				}
			}
		})
	}
}

func TestReadFrameLimits(t *testing.T) {
	frame := AppendFrame(nil, &DeleteTopicRequest{Name: "topic"})
	if _, err := ReadFrame(bytes.NewReader(frame), nil, len(frame)-1); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader(frame), nil, len(frame)); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader(nil), nil, 100); err != io.EOF {
		t.Fatalf("empty: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader(frame[:6]), nil, 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut header: %v", err)
	}
	f, err := ReadFrame(bytes.NewReader(append(frame, frame...)), make([]byte, 0, 64), 100)
	if err != nil || f.API != APIDeleteTopic {
		t.Fatal(f, err)
	}
	req := &ProduceRequest{Corr: 1, Acks: 1, Topic: "t", Batches: []byte("0123456789")}
	hdr := AppendProduceHeader(nil, req, len(req.Batches))
	if !bytes.Equal(append(hdr, req.Batches...), AppendFrame(nil, req)) {
		t.Fatal("AppendProduceHeader + batches differs from AppendFrame")
	}
}

// A declared array length is checked against the bytes left before
// anything is allocated.
func TestDecoderDoesNotTrustCounts(t *testing.T) {
	p := binary.BigEndian.AppendUint32(nil, 1<<31)
	err := DecodePayload(append(p, 0), &MetadataRequest{})
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "array") {
		t.Fatal(err)
	}
}

func addSeeds(f *testing.F, requests bool) {
	for _, m := range samples() {
		if isRequest(m) == requests {
			f.Add(uint16(m.API()), AppendFrame(nil, m)[FrameHeaderSize:])
		}
	}
}

// checkDecoder decodes payload as api's message; whatever decodes must
// re-encode to something that decodes to the same message.
func checkDecoder(t *testing.T, m Message, payload []byte) {
	if m == nil {
		return
	}
	if err := DecodePayload(payload, m); err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("error not wrapping ErrMalformed: %v", err)
		}
		return
	}
	enc := AppendFrame(nil, m)[FrameHeaderSize:]
	again := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
	if sr, ok := m.(*SimpleResponse); ok {
		again = &SimpleResponse{Key: sr.Key}
	}
	if err := DecodePayload(enc, again); err != nil {
		t.Fatalf("re-encoded message does not decode: %v", err)
	}
	if enc2 := AppendFrame(nil, again)[FrameHeaderSize:]; !bytes.Equal(enc, enc2) {
		t.Fatalf("encoding not stable")
	}
}

// FuzzRequests runs the decoder of every request (the server's input),
// picked by API key.
func FuzzRequests(f *testing.F) {
	addSeeds(f, true)
	f.Fuzz(func(t *testing.T, api uint16, payload []byte) {
		checkDecoder(t, NewRequest(API(api)), payload)
	})
}

// FuzzResponses runs the decoder of every response and pushed frame (the
// client's input), picked by API key.
func FuzzResponses(f *testing.F) {
	addSeeds(f, false)
	f.Fuzz(func(t *testing.T, api uint16, payload []byte) {
		checkDecoder(t, NewResponse(API(api)), payload)
	})
}

// FuzzReadFrame reads frames from arbitrary bytes with a small limit.
func FuzzReadFrame(f *testing.F) {
	for _, m := range samples() {
		f.Add(AppendFrame(nil, m))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 2, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			fr, err := ReadFrame(r, nil, 4096)
			if err != nil {
				return
			}
			if len(fr.Payload)+FrameHeaderSize > 4096 {
				t.Fatalf("frame of %d bytes passed a 4096 limit", len(fr.Payload))
			}
		}
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz from the samples when
// WISP_WRITE_SEEDS is set.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("WISP_WRITE_SEEDS") == "" {
		t.Skip("set WISP_WRITE_SEEDS=1 to regenerate testdata/fuzz")
	}
	for _, m := range samples() {
		name := fmt.Sprintf("%s-%s", m.API(), strings.TrimPrefix(fmt.Sprintf("%T", m), "*wire."))
		payload := AppendFrame(nil, m)[FrameHeaderSize:]
		target := "FuzzResponses"
		if isRequest(m) {
			target = "FuzzRequests"
		}
		writeSeed(t, target, name, fmt.Sprintf("uint16(%d)\n[]byte(%q)\n", uint16(m.API()), payload))
		writeSeed(t, "FuzzReadFrame", name, fmt.Sprintf("[]byte(%q)\n", AppendFrame(nil, m)))
	}
	writeSeed(t, "FuzzReadFrame", "length-over-limit", fmt.Sprintf("[]byte(%q)\n", []byte{0xff, 0xff, 0xff, 0xff}))
	writeSeed(t, "FuzzRequests", "array-count-over-payload", fmt.Sprintf("uint16(%d)\n[]byte(%q)\n", uint16(APIMetadata), []byte{0x7f, 0xff, 0xff, 0xff, 0}))
}

func writeSeed(t *testing.T, target, name, body string) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte("go test fuzz v1\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
}
