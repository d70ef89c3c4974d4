package kafkaapi

import (
	"context"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/batch"
)

func batchRecord(v string) batch.Record { return batch.Record{Value: []byte(v)} }

// issue sends req at exactly version v to the broker (no client-side
// routing) and returns the response.
func issue[Resp kmsg.Response](t testing.TB, cl *kgo.Client, req kmsg.Request, v int16) Resp {
	t.Helper()
	resp, err := cl.Broker(1).RetriableRequest(ctxTimeout(t, 10*time.Second), pinVersion{req, v})
	if err != nil {
		t.Fatalf("%T v%d: %v", req, v, err)
	}
	if got := resp.GetVersion(); got != v {
		t.Fatalf("%T answered at v%d, want v%d", req, got, v)
	}
	return resp.(Resp)
}

func versions(key int16) []int16 {
	a := lookupAPI(key)
	var vs []int16
	for v := a.min; v <= a.max; v++ {
		vs = append(vs, v)
	}
	return vs
}

func TestMetadataAutoCreate(t *testing.T) {
	ts := startServer(t)
	cl := ts.client(t)
	for _, v := range versions(3) {
		name := "auto-" + strconv.Itoa(int(v))
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = []kmsg.MetadataRequestTopic{rt}
		req.AllowAutoTopicCreation = false
		resp := issue[*kmsg.MetadataResponse](t, cl, req, v)
		if v >= 4 {
			// v4+ may decline auto-creation.
			if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
				t.Fatalf("v%d, auto-creation declined: error %d", v, resp.Topics[0].ErrorCode)
			}
			req.AllowAutoTopicCreation = true
			resp = issue[*kmsg.MetadataResponse](t, cl, req, v)
		}
		mt := resp.Topics[0]
		if mt.ErrorCode != 0 || len(mt.Partitions) != 1 || mt.Partitions[0].Leader != 1 {
			t.Fatalf("v%d: %+v", v, mt)
		}
		if len(resp.Brokers) != 1 || net.JoinHostPort(resp.Brokers[0].Host, strconv.Itoa(int(resp.Brokers[0].Port))) != ts.addr {
			t.Fatalf("v%d: brokers %+v", v, resp.Brokers)
		}
		if v >= 10 && mt.TopicID != mustTopic(t, ts, name).ID {
			t.Fatalf("v%d: topic id %x", v, mt.TopicID)
		}
	}
	// v12 looks topics up by id.
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.TopicID = mustTopic(t, ts, "auto-5").ID
	req.Topics = []kmsg.MetadataRequestTopic{rt}
	if resp := issue[*kmsg.MetadataResponse](t, cl, req, 12); resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != "auto-5" {
		t.Fatalf("by id: %+v", resp.Topics[0])
	}
	// Invalid names are refused, not created.
	rt = kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("bad/name")
	req.Topics = []kmsg.MetadataRequestTopic{rt}
	req.AllowAutoTopicCreation = true
	if resp := issue[*kmsg.MetadataResponse](t, cl, req, 9); resp.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("invalid name: error %d", resp.Topics[0].ErrorCode)
	}
}

func TestNoAutoCreate(t *testing.T) {
	ts := startServer(t, func(c *bus.Config) { c.AutoCreateTopics = false })
	cl := ts.client(t)
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("nope")
	req.Topics = []kmsg.MetadataRequestTopic{rt}
	req.AllowAutoTopicCreation = true
	if resp := issue[*kmsg.MetadataResponse](t, cl, req, 9); resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("error %d", resp.Topics[0].ErrorCode)
	}
	presp := issue[*kmsg.ProduceResponse](t, cl, produceReq("nope", 0, 1, mustBatch(t, batchRecord("x"))), 9)
	if code := presp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("produce: error %d", code)
	}
	if _, err := ts.b.Topic("nope"); err == nil {
		t.Fatal("topic created")
	}
}

func TestFindCoordinator(t *testing.T) {
	ts := startServer(t)
	cl := ts.client(t)
	host, port, _ := net.SplitHostPort(ts.addr)
	for _, v := range versions(10) {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey, req.CoordinatorKeys = "g", []string{"g1", "g2", "g3"}
		resp := issue[*kmsg.FindCoordinatorResponse](t, cl, req, v)
		if v < 4 {
			if resp.ErrorCode != 0 || resp.NodeID != 1 || resp.Host != host || strconv.Itoa(int(resp.Port)) != port {
				t.Fatalf("v%d: %+v", v, resp)
			}
			continue
		}
		if len(resp.Coordinators) != 3 {
			t.Fatalf("v%d: %d coordinators", v, len(resp.Coordinators))
		}
		for i, c := range resp.Coordinators {
			if c.Key != req.CoordinatorKeys[i] || c.ErrorCode != 0 || c.NodeID != 1 || c.Host != host {
				t.Fatalf("v%d: %+v", v, c)
			}
		}
	}
	// Transactional ids: refused, with a message.
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorType, req.CoordinatorKeys = 1, []string{"tx"}
	resp := issue[*kmsg.FindCoordinatorResponse](t, cl, req, 4)
	if c := resp.Coordinators[0]; c.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code || c.ErrorMessage == nil {
		t.Fatalf("transaction coordinator: %+v", c)
	}
}

// joinAlone runs a one-member group through JoinGroup and SyncGroup at
// version v (v4+ joins twice: KIP-394 hands out the member id first).
func joinAlone(t testing.TB, cl *kgo.Client, g string, v int16) (string, int32) {
	t.Helper()
	jreq := kmsg.NewPtrJoinGroupRequest()
	jreq.Group, jreq.SessionTimeoutMillis, jreq.RebalanceTimeoutMillis, jreq.ProtocolType = g, 10000, 10000, "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", []byte{0, 1}
	jreq.Protocols = []kmsg.JoinGroupRequestProtocol{p}
	jresp := issue[*kmsg.JoinGroupResponse](t, cl, jreq, min(v, 9))
	if jresp.ErrorCode == kerr.MemberIDRequired.Code {
		jreq.MemberID = jresp.MemberID
		jresp = issue[*kmsg.JoinGroupResponse](t, cl, jreq, min(v, 9))
	}
	if jresp.ErrorCode != 0 || jresp.LeaderID != jresp.MemberID || len(jresp.Members) != 1 {
		t.Fatalf("join v%d: %+v", v, jresp)
	}
	sreq := kmsg.NewPtrSyncGroupRequest()
	sreq.Group, sreq.MemberID, sreq.Generation = g, jresp.MemberID, jresp.Generation
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = jresp.MemberID, []byte("mine")
	sreq.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{a}
	sresp := issue[*kmsg.SyncGroupResponse](t, cl, sreq, min(v, 5))
	if sresp.ErrorCode != 0 || string(sresp.MemberAssignment) != "mine" {
		t.Fatalf("sync v%d: %+v", v, sresp)
	}
	if v >= 5 && (sresp.Protocol == nil || *sresp.Protocol != "range") {
		t.Fatalf("sync v%d: protocol %v", v, sresp.Protocol)
	}
	return jresp.MemberID, jresp.Generation
}

// TestGroupAPIs walks the group APIs through every served version.
func TestGroupAPIs(t *testing.T) {
	ts := startServer(t)
	createTopic(t, ts, "gt", 2)
	cl := ts.client(t)
	for _, v := range versions(11) {
		g := "g-v" + strconv.Itoa(int(v))
		member, gen := joinAlone(t, cl, g, v)

		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.MemberID, hb.Generation = g, member, gen
		if resp := issue[*kmsg.HeartbeatResponse](t, cl, hb, min(v, 4)); resp.ErrorCode != 0 {
			t.Fatalf("heartbeat v%d: %d", v, resp.ErrorCode)
		}
		hb.Generation = gen + 10
		if resp := issue[*kmsg.HeartbeatResponse](t, cl, hb, min(v, 4)); resp.ErrorCode != kerr.IllegalGeneration.Code {
			t.Fatalf("heartbeat with a wrong generation v%d: %d", v, resp.ErrorCode)
		}

		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.Group, oc.MemberID, oc.Generation = g, member, gen
		oct := kmsg.NewOffsetCommitRequestTopic()
		oct.Topic = "gt"
		for p := int32(0); p < 3; p++ { // partition 2 does not exist
			ocp := kmsg.NewOffsetCommitRequestTopicPartition()
			ocp.Partition, ocp.Offset, ocp.LeaderEpoch, ocp.Metadata = p, int64(10+p), 0, kmsg.StringPtr("m")
			oct.Partitions = append(oct.Partitions, ocp)
		}
		oc.Topics = []kmsg.OffsetCommitRequestTopic{oct}
		cv := min(v, 9)
		if cv == 0 {
			cv = 1 // v0 commits outside group management, refused while the group has members
		}
		ocr := issue[*kmsg.OffsetCommitResponse](t, cl, oc, cv)
		codes := []int16{}
		for _, p := range ocr.Topics[0].Partitions {
			codes = append(codes, p.ErrorCode)
		}
		if !slices.Equal(codes, []int16{0, 0, kerr.UnknownTopicOrPartition.Code}) {
			t.Fatalf("commit v%d: codes %v", cv, codes)
		}
	}
	// OffsetFetch at every version, v8 with several groups.
	for _, v := range versions(9) {
		of := kmsg.NewPtrOffsetFetchRequest()
		of.Group = "g-v3"
		oft := kmsg.NewOffsetFetchRequestTopic()
		oft.Topic, oft.Partitions = "gt", []int32{0, 1, 5}
		of.Topics = []kmsg.OffsetFetchRequestTopic{oft}
		for _, name := range []string{"g-v3", "g-v4", "unknown"} {
			og := kmsg.NewOffsetFetchRequestGroup()
			og.Group = name
			if name != "g-v4" {
				ogt := kmsg.NewOffsetFetchRequestGroupTopic()
				ogt.Topic, ogt.Partitions = "gt", []int32{0, 1}
				og.Topics = []kmsg.OffsetFetchRequestGroupTopic{ogt} // g-v4: all
			}
			of.Groups = append(of.Groups, og)
		}
		resp := issue[*kmsg.OffsetFetchResponse](t, cl, of, v)
		if v < 8 {
			var offs []int64
			for _, p := range resp.Topics[0].Partitions {
				offs = append(offs, p.Offset)
			}
			if resp.ErrorCode != 0 || !slices.Equal(offs, []int64{10, 11, -1}) {
				t.Fatalf("offset fetch v%d: %+v", v, resp)
			}
			continue
		}
		if len(resp.Groups) != 3 {
			t.Fatalf("offset fetch v8: %d groups", len(resp.Groups))
		}
		for i, want := range [][]int64{{10, 11}, {10, 11}, {-1, -1}} {
			var offs []int64
			for _, tp := range resp.Groups[i].Topics {
				for _, p := range tp.Partitions {
					offs = append(offs, p.Offset)
				}
			}
			if resp.Groups[i].ErrorCode != 0 || !slices.Equal(offs, want) {
				t.Fatalf("offset fetch v8 group %s: %v, want %v", resp.Groups[i].Group, offs, want)
			}
		}
	}
	// ListGroups and DescribeGroups.
	for _, v := range versions(16) {
		req := kmsg.NewPtrListGroupsRequest()
		req.StatesFilter = []string{"stable"}
		resp := issue[*kmsg.ListGroupsResponse](t, cl, req, v)
		if len(resp.Groups) != len(versions(11)) {
			t.Fatalf("list groups v%d: %d groups", v, len(resp.Groups))
		}
	}
	for _, v := range versions(15) {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{"g-v5", "unknown"}
		resp := issue[*kmsg.DescribeGroupsResponse](t, cl, req, v)
		if g := resp.Groups[0]; g.State != "Stable" || g.Protocol != "range" || len(g.Members) != 1 || string(g.Members[0].MemberAssignment) != "mine" {
			t.Fatalf("describe v%d: %+v", v, g)
		}
		if g := resp.Groups[1]; g.State != "Dead" || g.ErrorCode != 0 {
			t.Fatalf("describe unknown v%d: %+v", v, g)
		}
	}
	// LeaveGroup: v0-v2 one member, v3+ a batch with an error each.
	for _, v := range versions(13) {
		g := "g-v" + strconv.Itoa(int(min(v+4, 9)))
		d, _ := ts.b.Groups().DescribeGroup(g)
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group, req.MemberID = g, d.Members[0].MemberID
		for _, id := range []string{d.Members[0].MemberID, "stranger"} {
			m := kmsg.NewLeaveGroupRequestMember()
			m.MemberID = id
			req.Members = append(req.Members, m)
		}
		if v < 3 {
			if resp := issue[*kmsg.LeaveGroupResponse](t, cl, req, v); resp.ErrorCode != 0 {
				t.Fatalf("leave v%d: %d", v, resp.ErrorCode)
			}
		} else {
			resp := issue[*kmsg.LeaveGroupResponse](t, cl, req, v)
			if resp.ErrorCode != 0 || len(resp.Members) != 2 || resp.Members[0].ErrorCode != 0 || resp.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
				t.Fatalf("leave v%d: %+v", v, resp)
			}
		}
		if d, _ := ts.b.Groups().DescribeGroup(g); len(d.Members) != 0 {
			t.Fatalf("leave v%d: %d members left", v, len(d.Members))
		}
	}
	// OffsetDelete, then DeleteGroups of empty groups.
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g-v4"
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic, odt.Partitions = "gt", []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
	od.Topics = []kmsg.OffsetDeleteRequestTopic{odt}
	if resp := issue[*kmsg.OffsetDeleteResponse](t, cl, od, 0); resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete: %+v", resp)
	}
	if offs, _ := ts.b.Groups().FetchOffsets("g-v4", nil); len(offs) != 1 {
		t.Fatalf("after offset delete: %v", offs)
	}
	for _, v := range versions(42) {
		g := "g-v" + strconv.Itoa(int(4+v))
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Groups = []string{g, "unknown"}
		resp := issue[*kmsg.DeleteGroupsResponse](t, cl, req, v)
		if resp.Groups[0].ErrorCode != 0 || resp.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code {
			t.Fatalf("delete groups v%d: %+v", v, resp.Groups)
		}
		if offs, _ := ts.b.Groups().FetchOffsets(g, nil); len(offs) != 0 {
			t.Fatalf("delete groups v%d: offsets left %v", v, offs)
		}
	}
}

// TestTopicAdmin: CreateTopics, CreatePartitions, configs and DeleteTopics
// at every served version.
func TestTopicAdmin(t *testing.T) {
	ts := startServer(t)
	cl := ts.client(t)
	for _, v := range versions(19) {
		name := "admin-" + strconv.Itoa(int(v))
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 2, 1
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = "retention.ms", kmsg.StringPtr("60000")
		rt.Configs = []kmsg.CreateTopicsRequestTopicConfig{c}
		bad := kmsg.NewCreateTopicsRequestTopic()
		bad.Topic, bad.NumPartitions, bad.ReplicationFactor = name+"-rf3", 1, 3
		req.Topics = []kmsg.CreateTopicsRequestTopic{rt, bad}
		if v >= 1 {
			req.ValidateOnly = true
			resp := issue[*kmsg.CreateTopicsResponse](t, cl, req, v)
			if resp.Topics[0].ErrorCode != 0 || resp.Topics[1].ErrorCode != kerr.InvalidReplicationFactor.Code {
				t.Fatalf("validate v%d: %+v", v, resp.Topics)
			}
			if _, err := ts.b.Topic(name); err == nil {
				t.Fatalf("validate-only v%d created the topic", v)
			}
			req.ValidateOnly = false
		}
		resp := issue[*kmsg.CreateTopicsResponse](t, cl, req, v)
		if resp.Topics[0].ErrorCode != 0 || resp.Topics[1].ErrorCode != kerr.InvalidReplicationFactor.Code {
			t.Fatalf("create v%d: %+v", v, resp.Topics)
		}
		if v >= 5 && (resp.Topics[0].NumPartitions != 2 || len(resp.Topics[0].Configs) == 0) {
			t.Fatalf("create v%d: %+v", v, resp.Topics[0])
		}
		info := mustTopic(t, ts, name)
		if len(info.Partitions) != 2 || info.Configs["retention.ms"] != "60000" {
			t.Fatalf("created v%d: %+v", v, info)
		}
		if v >= 7 && resp.Topics[0].TopicID != info.ID {
			t.Fatalf("create v%d: topic id", v)
		}
		if resp = issue[*kmsg.CreateTopicsResponse](t, cl, req, v); resp.Topics[0].ErrorCode != kerr.TopicAlreadyExists.Code {
			t.Fatalf("create again v%d: %d", v, resp.Topics[0].ErrorCode)
		}
	}
	for _, v := range versions(37) {
		name := "admin-" + strconv.Itoa(int(v))
		req := kmsg.NewPtrCreatePartitionsRequest()
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = name, 4
		req.Topics = []kmsg.CreatePartitionsRequestTopic{rt}
		req.ValidateOnly = true
		if resp := issue[*kmsg.CreatePartitionsResponse](t, cl, req, v); resp.Topics[0].ErrorCode != 0 || len(mustTopic(t, ts, name).Partitions) != 2 {
			t.Fatalf("create partitions v%d validate: %+v", v, resp.Topics[0])
		}
		req.ValidateOnly = false
		if resp := issue[*kmsg.CreatePartitionsResponse](t, cl, req, v); resp.Topics[0].ErrorCode != 0 || len(mustTopic(t, ts, name).Partitions) != 4 {
			t.Fatalf("create partitions v%d: %+v", v, resp.Topics[0])
		}
		if resp := issue[*kmsg.CreatePartitionsResponse](t, cl, req, v); resp.Topics[0].ErrorCode != kerr.InvalidPartitions.Code {
			t.Fatalf("create partitions again v%d: %d", v, resp.Topics[0].ErrorCode)
		}
	}
	for _, v := range versions(32) {
		req := kmsg.NewPtrDescribeConfigsRequest()
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "admin-0"
		b := kmsg.NewDescribeConfigsRequestResource()
		b.ResourceType, b.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
		req.Resources = []kmsg.DescribeConfigsRequestResource{r, b}
		req.IncludeSynonyms, req.IncludeDocumentation = true, true
		resp := issue[*kmsg.DescribeConfigsResponse](t, cl, req, v)
		if resp.Resources[0].ErrorCode != 0 || len(resp.Resources[0].Configs) != len(bus.KnownConfigs) {
			t.Fatalf("describe configs v%d: %+v", v, resp.Resources[0])
		}
		for _, c := range resp.Resources[0].Configs {
			switch c.Name {
			case "retention.ms":
				if *c.Value != "60000" || (v >= 1 && c.Source != kmsg.ConfigSourceDynamicTopicConfig) || (v == 0 && c.IsDefault) {
					t.Fatalf("describe configs v%d: %+v", v, c)
				}
				if v >= 1 && len(c.ConfigSynonyms) != 2 {
					t.Fatalf("describe configs v%d: synonyms %+v", v, c.ConfigSynonyms)
				}
			case "cleanup.policy":
				if *c.Value != "delete" || (v >= 1 && c.Source != kmsg.ConfigSourceDefaultConfig) || (v >= 3 && c.ConfigType != kmsg.ConfigTypeList) {
					t.Fatalf("describe configs v%d: %+v", v, c)
				}
			}
		}
		if resp.Resources[1].ErrorCode != 0 || len(resp.Resources[1].Configs) == 0 {
			t.Fatalf("describe broker configs v%d: %+v", v, resp.Resources[1])
		}
	}
	for _, v := range versions(33) {
		req := kmsg.NewPtrAlterConfigsRequest()
		r := kmsg.NewAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "admin-1"
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name, c.Value = "segment.ms", kmsg.StringPtr(strconv.Itoa(100000+int(v)))
		r.Configs = []kmsg.AlterConfigsRequestResourceConfig{c}
		req.Resources = []kmsg.AlterConfigsRequestResource{r}
		if resp := issue[*kmsg.AlterConfigsResponse](t, cl, req, v); resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("alter configs v%d: %+v", v, resp.Resources[0])
		}
		// Non-incremental: retention.ms, not named, is back to its default.
		if got := mustTopic(t, ts, "admin-1").Configs; len(got) != 1 || got["segment.ms"] != strconv.Itoa(100000+int(v)) {
			t.Fatalf("after alter configs v%d: %v", v, got)
		}
	}
	for _, v := range versions(44) {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "admin-2"
		set := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		set.Name, set.Op, set.Value = "segment.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("200000")
		del := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		del.Name, del.Op = "retention.ms", kmsg.IncrementalAlterConfigOpDelete
		app := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		app.Name, app.Op, app.Value = "cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, kmsg.StringPtr("compact")
		r.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{set, del, app}
		bad := kmsg.NewIncrementalAlterConfigsRequestResource()
		bad.ResourceType, bad.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
		req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{r, bad}
		resp := issue[*kmsg.IncrementalAlterConfigsResponse](t, cl, req, v)
		if resp.Resources[0].ErrorCode != 0 || resp.Resources[1].ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("incremental alter v%d: %+v", v, resp.Resources)
		}
		got := mustTopic(t, ts, "admin-2").Configs
		if len(got) != 2 || got["segment.ms"] != "200000" || got["cleanup.policy"] != "delete,compact" {
			t.Fatalf("after incremental alter v%d: %v", v, got)
		}
	}
	for _, v := range versions(20) {
		name := "admin-" + strconv.Itoa(int(v))
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TopicNames = []string{name, "missing"}
		byName, byID := kmsg.NewDeleteTopicsRequestTopic(), kmsg.NewDeleteTopicsRequestTopic()
		byName.Topic = kmsg.StringPtr("missing")
		byID.TopicID = mustTopic(t, ts, name).ID
		req.Topics = []kmsg.DeleteTopicsRequestTopic{byID, byName}
		resp := issue[*kmsg.DeleteTopicsResponse](t, cl, req, v)
		if resp.Topics[0].ErrorCode != 0 || resp.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("delete topics v%d: %+v", v, resp.Topics)
		}
		if _, err := ts.b.Topic(name); err == nil {
			t.Fatalf("delete topics v%d: %s still there", v, name)
		}
	}
}

func TestClusterAPIs(t *testing.T) {
	ts := startServer(t)
	createTopic(t, ts, "epochs", 1)
	cl := ts.client(t)
	if _, err := ts.b.Produce(context.Background(), "epochs", 0, mustBatch(t, batchRecord("a"), batchRecord("b")), bus.AcksLeader); err != nil {
		t.Fatal(err)
	}
	for _, v := range versions(60) {
		resp := issue[*kmsg.DescribeClusterResponse](t, cl, kmsg.NewPtrDescribeClusterRequest(), v)
		if resp.ErrorCode != 0 || resp.ClusterID != clusterID || len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 1 {
			t.Fatalf("describe cluster v%d: %+v", v, resp)
		}
	}
	for _, v := range versions(23) {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "epochs"
		for _, e := range []int32{0, 5} {
			p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			p.LeaderEpoch, p.CurrentLeaderEpoch = e, -1
			rt.Partitions = append(rt.Partitions, p)
		}
		req.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{rt}
		resp := issue[*kmsg.OffsetForLeaderEpochResponse](t, cl, req, v)
		ps := resp.Topics[0].Partitions
		if ps[0].ErrorCode != 0 || ps[0].EndOffset != 2 || ps[1].EndOffset != -1 {
			t.Fatalf("offset for leader epoch v%d: %+v", v, ps)
		}
	}
	for _, v := range versions(22) {
		resp := issue[*kmsg.InitProducerIDResponse](t, cl, kmsg.NewPtrInitProducerIDRequest(), v)
		if resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch != 0 {
			t.Fatalf("init producer id v%d: %+v", v, resp)
		}
	}
}
