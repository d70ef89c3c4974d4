package kafkaapi

import (
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wispbus/wisp/bus"
)

// authorizedOperationsUnset is Kafka's "not requested / not computed"
// value of the AuthorizedOperations fields (INT32_MIN).
const authorizedOperationsUnset = -2147483648

func handleMetadata(cc *call, req *kmsg.MetadataRequest) (*kmsg.MetadataResponse, error) {
	b := cc.c.s.b
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = brokers(cc)
	resp.ClusterID = kmsg.StringPtr(clusterID)
	resp.ControllerID = b.ControllerID()

	// v0 asks for every topic with an empty list; v1+ with a null one.
	if req.Topics == nil || req.Version == 0 && len(req.Topics) == 0 {
		for _, info := range b.Topics() {
			resp.Topics = append(resp.Topics, topicMetadata(info))
		}
		return resp, nil
	}
	// Kafka's auto.create.topics.enable, which v4+ requests may decline.
	autoCreate := b.Config().AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	var fe firstErr
	for _, rt := range req.Topics {
		var info bus.TopicInfo
		var err error
		switch {
		case rt.Topic == nil: // v12+: by topic id
			info, err = cc.c.s.topicByID(rt.TopicID)
		case autoCreate:
			info, err = b.EnsureTopic(cc.c.ctx, *rt.Topic)
		default:
			info, err = b.Topic(*rt.Topic)
		}
		if err != nil {
			t := kmsg.NewMetadataResponseTopic()
			t.Topic, t.TopicID = rt.Topic, rt.TopicID
			t.ErrorCode = fe.add(err)
			resp.Topics = append(resp.Topics, t)
			continue
		}
		resp.Topics = append(resp.Topics, topicMetadata(info))
	}
	return resp, fe.err
}

// brokers lists the nodes with a Kafka listener: this one as the client
// reached it, the others at their advertised Kafka addresses.
func brokers(cc *call) []kmsg.MetadataResponseBroker {
	b := cc.c.s.b
	var out []kmsg.MetadataResponseBroker
	for _, n := range b.Nodes() {
		br := kmsg.NewMetadataResponseBroker()
		br.NodeID = n.ID
		if n.ID == b.NodeID() {
			br.Host, br.Port = cc.c.host, cc.c.port
		} else {
			host, port, ok := splitHostPort(n.Kafka)
			if !ok {
				continue
			}
			br.Host, br.Port = host, port
			if n.Rack != "" {
				br.Rack = kmsg.StringPtr(n.Rack)
			}
		}
		out = append(out, br)
	}
	return out
}

// nodeAddr is where Kafka clients reach node id: this connection's address
// for this node.
func nodeAddr(cc *call, id int32) (string, int32, bool) {
	b := cc.c.s.b
	if id == b.NodeID() {
		return cc.c.host, cc.c.port, true
	}
	for _, n := range b.Nodes() {
		if n.ID == id {
			return splitHostPort(n.Kafka)
		}
	}
	return "", 0, false
}

func splitHostPort(addr string) (string, int32, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	n, err := strconv.Atoi(port)
	if err != nil || n <= 0 || n > 65535 {
		return "", 0, false
	}
	return host, int32(n), true
}

func topicMetadata(info bus.TopicInfo) kmsg.MetadataResponseTopic {
	t := kmsg.NewMetadataResponseTopic()
	t.Topic = kmsg.StringPtr(info.Name)
	t.TopicID = info.ID
	t.AuthorizedOperations = authorizedOperationsUnset
	for _, p := range info.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition, mp.Leader, mp.LeaderEpoch = p.Partition, p.Leader, p.LeaderEpoch
		mp.Replicas, mp.ISR, mp.OfflineReplicas = p.Replicas, p.ISR, []int32{}
		t.Partitions = append(t.Partitions, mp)
	}
	return t
}

func handleDescribeCluster(cc *call, req *kmsg.DescribeClusterRequest) (*kmsg.DescribeClusterResponse, error) {
	b := cc.c.s.b
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = req.EndpointType
	resp.ClusterID = clusterID
	resp.ControllerID = b.ControllerID()
	resp.ClusterAuthorizedOperations = authorizedOperationsUnset
	if req.Version >= 1 && req.EndpointType != 1 {
		// 2 asks for controllers, which a wisp node does not expose.
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("kafkaapi: endpoint type %d: only brokers (1) are served", req.EndpointType))
		return resp, kerr.UnsupportedEndpointType
	}
	for _, mb := range brokers(cc) {
		br := kmsg.NewDescribeClusterResponseBroker()
		br.NodeID, br.Host, br.Port, br.Rack = mb.NodeID, mb.Host, mb.Port, mb.Rack
		resp.Brokers = append(resp.Brokers, br)
	}
	return resp, nil
}
