package kafkaapi

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/batch"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzRequest from fuzzSeeds")

// FuzzRequest feeds arbitrary request frames (everything after the 4-byte
// size) to the reader and dispatcher of a real server over an in-memory
// connection, followed by an ApiVersions request as a sentinel. It checks
// that nothing panics or hangs, that answers come in request order and
// decode, and that every log still reads back as valid batches.
//
//	go test -run '^$' -fuzz FuzzRequest -fuzztime 30s ./kafkaapi
func FuzzRequest(f *testing.F) {
	bcfg := bus.DefaultConfig()
	bcfg.DataDir = f.TempDir()
	bcfg.Logger = nil
	b, err := bus.Open(bcfg)
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"fz", "fz-del"} {
		if _, err := b.CreateTopic(context.Background(), bus.TopicSpec{Name: name, Partitions: 2}); err != nil {
			f.Fatal(err)
		}
	}
	cfg := DefaultConfig()
	cfg.Logger = discardLogger()
	s, err := New(cfg, b) // not started: connections come from net.Pipe
	if err != nil {
		f.Fatal(err)
	}
	var panicked sync.Map
	s.onPanic = func(r any) { panicked.Store(fmt.Sprint(r), true) }
	// Long polls and joins end quickly, so that the fuzzer does not spend
	// its time waiting, and their answers are checked too.
	s.waitCap = 20 * time.Millisecond
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			f.Error(err)
		}
		// Whatever was sent, every log holds only valid batches.
		for _, info := range b.Topics() {
			for _, p := range info.Partitions {
				for off := p.LogStartOffset; off < p.HighWatermark; {
					res, err := b.Fetch(context.Background(), info.Name, p.Partition, off, 1<<20)
					if err == nil {
						err = batch.Each(res.Batches, func(h batch.Header, _ []byte) error {
							off = h.NextOffset()
							return nil
						})
					}
					if err != nil {
						f.Errorf("%s/%d at %d: %v", info.Name, p.Partition, off, err)
						break
					}
				}
			}
		}
		b.Close()
	})

	f.Fuzz(func(t *testing.T, frame []byte) {
		if skipFuzzInput(frame) {
			t.Skip()
		}
		runFuzzFrame(t, s, frame)
		panicked.Range(func(k, _ any) bool {
			t.Fatalf("handler panicked: %v", k)
			return false
		})
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// skipFuzzInput leaves out requests that are valid but too heavy to run
// thousands of times: topics with many partitions each open as many logs.
func skipFuzzInput(frame []byte) bool {
	h, body, err := parseHeader(frame)
	if err != nil || (h.key != 19 && h.key != 37) {
		return false
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	if h.version < 0 || h.version > req.MaxVersion() {
		return false
	}
	if req.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			return false
		}
	}
	if req.ReadFrom(body) != nil {
		return false
	}
	switch r := req.(type) {
	case *kmsg.CreateTopicsRequest:
		for _, t := range r.Topics {
			if t.NumPartitions > 8 || len(t.ReplicaAssignment) > 8 {
				return true
			}
		}
	case *kmsg.CreatePartitionsRequest:
		for _, t := range r.Topics {
			if t.Count > 8 {
				return true
			}
		}
	}
	return false
}

func runFuzzFrame(t *testing.T, s *Server, frame []byte) {
	client, server := net.Pipe()
	c := s.newConn(server, nil)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.start()

	var corr int32 = -1
	var key, version int16 = -1, -1
	if len(frame) >= 8 {
		key = int16(binary.BigEndian.Uint16(frame[0:]))
		version = int16(binary.BigEndian.Uint16(frame[2:]))
		corr = int32(binary.BigEndian.Uint32(frame[4:]))
	}
	sentinel := ^corr
	go func() {
		out := binary.BigEndian.AppendUint32(nil, uint32(len(frame)))
		out = append(out, frame...)
		sreq := kmsg.NewPtrApiVersionsRequest()
		sreq.SetVersion(0)
		// AppendRequest writes the size at the start of its dst.
		out = append(out, kmsg.NewRequestFormatter().AppendRequest(nil, sreq, sentinel)...)
		_, _ = client.Write(out) // fails once the server closes: fine
	}()

	// Requests wait at most waitCap; past this deadline something hangs.
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	sawRequest := false
	for {
		got, body, err := readFrame(client)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
				break // the server closed the connection
			}
			t.Fatalf("reading answers: %v", err)
		}
		switch {
		case got == sentinel && !sawRequest && got != corr:
			// The fuzzed request got no answer (acks=0) or the
			// sentinel was the only valid request.
			client.Close()
		case got == corr && !sawRequest:
			sawRequest = true
			checkFuzzResponse(t, key, version, body)
			continue
		case got == sentinel:
			client.Close()
		default:
			t.Fatalf("answer with correlation id %d; the request had %d, the sentinel %d", got, corr, sentinel)
		}
		break
	}
	client.Close()
	// Every goroutine of the connection ends once it is closed.
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("connection goroutines still running 10s after the connection closed")
	}
}

func readFrame(r io.Reader) (int32, []byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	if len(buf) < 4 {
		return 0, nil, errors.New("response frame shorter than a correlation id")
	}
	return int32(binary.BigEndian.Uint32(buf)), buf[4:], nil
}

// checkFuzzResponse decodes an answer with kmsg, as a client would.
func checkFuzzResponse(t *testing.T, key, version int16, body []byte) {
	resp := kmsg.ResponseForKey(key)
	if resp == nil {
		t.Fatalf("answer to unknown key %d", key)
	}
	if a := lookupAPI(key); key == apiVersionsKey && (a == nil || version > a.max) {
		version = 0 // the UNSUPPORTED_VERSION answer
	}
	resp.SetVersion(version)
	if resp.IsFlexible() && key != apiVersionsKey {
		if len(body) == 0 || body[0] != 0 {
			t.Fatalf("%T v%d: bad response header tags", resp, version)
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("%T v%d: answer does not decode: %v", resp, version, err)
	}
}

// TestFuzzSeeds checks that the committed seed corpus has every seed of
// fuzzSeeds; -update-seeds rewrites it:
//
//	go test -run TestFuzzSeeds ./kafkaapi -update-seeds
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzRequest")
	for name, frame := range fuzzSeeds(t) {
		path := filepath.Join(dir, "seed-"+name)
		if !*updateSeeds {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("seed %s missing (go test -run TestFuzzSeeds ./kafkaapi -update-seeds): %v", name, err)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		data := "go test fuzz v1\n[]byte(" + strconv.Quote(string(frame)) + ")\n"
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fuzzSeeds are valid requests of every API at several versions, and a few
// invalid ones, as frames without the size field.
func fuzzSeeds(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	add := func(name string, req kmsg.Request, versions ...int16) {
		for _, v := range versions {
			req.SetVersion(v)
			frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz")).AppendRequest(nil, req, 7)
			seeds[fmt.Sprintf("%s-v%d", name, v)] = frame[4:]
		}
	}
	good := mustBatch(t, batch.Record{Key: []byte("k"), Value: []byte("v"), Headers: []batch.RecordHeader{{Key: "h", Value: []byte("x")}}})
	zstd, err := batch.Build(batch.Options{Codec: batch.Zstd, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
		[]batch.Record{{Value: []byte("compressed")}, {Value: []byte("twice")}})
	if err != nil {
		t.Fatal(err)
	}

	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "fuzz", "1"
	add("apiversions", av, 0, 3, 4, 5)

	md := kmsg.NewPtrMetadataRequest()
	add("metadata-all", md, 1, 12)
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("fz")
	md.Topics = []kmsg.MetadataRequestTopic{mt}
	md.AllowAutoTopicCreation = true
	add("metadata", md, 0, 4, 9, 12)
	byID := kmsg.NewMetadataRequestTopic()
	md.Topics = []kmsg.MetadataRequestTopic{byID}
	add("metadata-id", md, 12)

	add("produce", produceReq("fz", 0, 1, good), 3, 7, 9, 11)
	add("produce-zstd", produceReq("fz", 1, -1, zstd), 8)
	add("produce-acks0", produceReq("fz", 0, 0, good), 9)
	add("produce-magic1", produceReq("fz", 0, 1, legacyMessageSet(1)), 2)
	txn := produceReq("fz", 0, 1, good)
	txn.TransactionID = kmsg.StringPtr("tx")
	add("produce-txn", txn, 9)

	fr := fetchReq("fz", 0, 0, 0, 1)
	add("fetch", fr, 4, 11, 12, 16)
	fr = fetchReq("fz", 1, 0, 5, 1)
	fr.Topics = append(fr.Topics, fetchReq("fz-del", 0, 0, 0, 1).Topics...)
	add("fetch-wait", fr, 7)

	lo := kmsg.NewPtrListOffsetsRequest()
	lot := kmsg.NewListOffsetsRequestTopic()
	lot.Topic = "fz"
	for i, ts := range []int64{-2, -1, 1700000000000} {
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Partition, p.Timestamp, p.MaxNumOffsets = int32(i%2), ts, 1
		lot.Partitions = append(lot.Partitions, p)
	}
	lo.Topics = []kmsg.ListOffsetsRequestTopic{lot}
	add("listoffsets", lo, 0, 1, 4, 6)

	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation = "fzg-commit", -1
	oct := kmsg.NewOffsetCommitRequestTopic()
	oct.Topic = "fz"
	ocp := kmsg.NewOffsetCommitRequestTopicPartition()
	ocp.Offset, ocp.Metadata = 1, kmsg.StringPtr("meta")
	oct.Partitions = []kmsg.OffsetCommitRequestTopicPartition{ocp}
	oc.Topics = []kmsg.OffsetCommitRequestTopic{oct}
	add("offsetcommit", oc, 0, 2, 8, 9)

	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group = "fzg-commit"
	add("offsetfetch-all", of, 2, 7)
	oft := kmsg.NewOffsetFetchRequestTopic()
	oft.Topic, oft.Partitions = "fz", []int32{0, 1}
	of.Topics = []kmsg.OffsetFetchRequestTopic{oft}
	add("offsetfetch", of, 0, 1, 5)
	of = kmsg.NewPtrOffsetFetchRequest()
	for _, g := range []string{"fzg-commit", "fzg-none"} {
		og := kmsg.NewOffsetFetchRequestGroup()
		og.Group = g
		of.Groups = append(of.Groups, og)
	}
	add("offsetfetch-groups", of, 8)

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "fzg"
	add("findcoordinator", fc, 0, 2, 3)
	fc.CoordinatorKeys = []string{"fzg", "fzg2"}
	add("findcoordinator-batch", fc, 4)
	fc.CoordinatorType = 1
	add("findcoordinator-txn", fc, 1, 4)

	for _, v := range []int16{0, 3, 5, 9} {
		jg := kmsg.NewPtrJoinGroupRequest()
		jg.Group = "fzg-join-" + strconv.Itoa(int(v))
		jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis = 6000, 6000
		jg.ProtocolType = "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0, 0, 0, 0, 0, 1, 0, 2, 'f', 'z', 0, 0, 0, 0}
		jg.Protocols = []kmsg.JoinGroupRequestProtocol{p}
		add("joingroup", jg, v)
	}
	sg := kmsg.NewPtrSyncGroupRequest()
	sg.Group, sg.MemberID, sg.Generation = "fzg-sync", "nobody", 1
	sga := kmsg.NewSyncGroupRequestGroupAssignment()
	sga.MemberID, sga.MemberAssignment = "nobody", []byte{0, 0}
	sg.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{sga}
	add("syncgroup", sg, 0, 5)
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "fzg-hb", "nobody", 1
	add("heartbeat", hb, 0, 4)
	lg := kmsg.NewPtrLeaveGroupRequest()
	lg.Group, lg.MemberID = "fzg-leave", "nobody"
	lgm := kmsg.NewLeaveGroupRequestMember()
	lgm.MemberID = "nobody"
	lg.Members = []kmsg.LeaveGroupRequestMember{lgm, lgm}
	add("leavegroup", lg, 0, 3, 5)
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"fzg-commit", "fzg-none"}
	add("describegroups", dg, 0, 5)
	lsg := kmsg.NewPtrListGroupsRequest()
	add("listgroups", lsg, 0, 3)
	lsg.StatesFilter, lsg.TypesFilter = []string{"Empty"}, []string{"classic"}
	add("listgroups-filter", lsg, 4, 5)
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"fzg-none", ""}
	add("deletegroups", del, 0, 2)
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "fzg-commit"
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic = "fz"
	odt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 1}}
	od.Topics = []kmsg.OffsetDeleteRequestTopic{odt}
	add("offsetdelete", od, 0)

	ct := kmsg.NewPtrCreateTopicsRequest()
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "fz-created", 2, 1
	ctc := kmsg.NewCreateTopicsRequestTopicConfig()
	ctc.Name, ctc.Value = "cleanup.policy", kmsg.StringPtr("compact")
	ctt.Configs = []kmsg.CreateTopicsRequestTopicConfig{ctc}
	ct.Topics = []kmsg.CreateTopicsRequestTopic{ctt}
	add("createtopics", ct, 0, 4, 7)
	ct.ValidateOnly = true
	add("createtopics-validate", ct, 1)

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TopicNames = []string{"fz-del"}
	add("deletetopics", dt, 0, 5)
	dtt := kmsg.NewDeleteTopicsRequestTopic()
	dtt.Topic = kmsg.StringPtr("fz-created")
	dt.Topics = []kmsg.DeleteTopicsRequestTopic{dtt, kmsg.NewDeleteTopicsRequestTopic()}
	add("deletetopics", dt, 6)

	cp := kmsg.NewPtrCreatePartitionsRequest()
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = "fz", 3
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{cpt}
	add("createpartitions", cp, 0, 3)

	ip := kmsg.NewPtrInitProducerIDRequest()
	add("initproducerid", ip, 0, 5)
	ip.TransactionalID = kmsg.StringPtr("tx")
	add("initproducerid-txn", ip, 3)

	ol := kmsg.NewPtrOffsetForLeaderEpochRequest()
	olt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	olt.Topic = "fz"
	olp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	olp.LeaderEpoch = 0
	olt.Partitions = []kmsg.OffsetForLeaderEpochRequestTopicPartition{olp}
	ol.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{olt}
	add("offsetforleaderepoch", ol, 0, 2, 4)

	dc := kmsg.NewPtrDescribeConfigsRequest()
	for _, r := range []struct {
		typ  kmsg.ConfigResourceType
		name string
	}{{kmsg.ConfigResourceTypeTopic, "fz"}, {kmsg.ConfigResourceTypeBroker, "1"}, {kmsg.ConfigResourceTypeBrokerLogger, "1"}} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = r.typ, r.name
		dc.Resources = append(dc.Resources, rr)
	}
	dc.IncludeSynonyms, dc.IncludeDocumentation = true, true
	add("describeconfigs", dc, 0, 1, 4)

	ac := kmsg.NewPtrAlterConfigsRequest()
	acr := kmsg.NewAlterConfigsRequestResource()
	acr.ResourceType, acr.ResourceName = kmsg.ConfigResourceTypeTopic, "fz"
	acc := kmsg.NewAlterConfigsRequestResourceConfig()
	acc.Name, acc.Value = "retention.ms", kmsg.StringPtr("3600000")
	acr.Configs = []kmsg.AlterConfigsRequestResourceConfig{acc}
	ac.Resources = []kmsg.AlterConfigsRequestResource{acr}
	add("alterconfigs", ac, 0, 2)

	ia := kmsg.NewPtrIncrementalAlterConfigsRequest()
	iar := kmsg.NewIncrementalAlterConfigsRequestResource()
	iar.ResourceType, iar.ResourceName = kmsg.ConfigResourceTypeTopic, "fz"
	for _, op := range []struct {
		op   kmsg.IncrementalAlterConfigOp
		name string
		v    string
	}{{kmsg.IncrementalAlterConfigOpSet, "segment.ms", "60000"}, {kmsg.IncrementalAlterConfigOpAppend, "cleanup.policy", "compact"}, {kmsg.IncrementalAlterConfigOpDelete, "retention.ms", ""}} {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = op.name, op.op, kmsg.StringPtr(op.v)
		iar.Configs = append(iar.Configs, c)
	}
	ia.Resources = []kmsg.IncrementalAlterConfigsRequestResource{iar}
	add("incrementalalterconfigs", ia, 0, 1)

	dcl := kmsg.NewPtrDescribeClusterRequest()
	add("describecluster", dcl, 0, 1)

	// Not served: the connection closes.
	apt := kmsg.NewPtrAddPartitionsToTxnRequest()
	add("addpartitionstotxn", apt, 3)
	seeds["garbage"] = []byte{0xff, 0xff, 0, 0, 0, 0, 0, 1, 0xff, 0xff}
	return seeds
}
