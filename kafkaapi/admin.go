package kafkaapi

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wispbus/wisp/bus"
)

// handleInitProducerID hands idempotent producers a fresh producer id.
// A transactional id is refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED
// (see errTransactions). A producer asking to bump its epoch (KIP-360,
// v3+) gets a new id instead, as Kafka does for non-transactional
// producers.
func handleInitProducerID(cc *call, req *kmsg.InitProducerIDRequest) (*kmsg.InitProducerIDResponse, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		err := fmt.Errorf("%w: %w", kerr.TransactionalIDAuthorizationFailed, errTransactions)
		resp.ErrorCode = errCode(err)
		return resp, err
	}
	id, epoch, err := cc.c.s.b.InitProducerID(cc.c.ctx)
	if err != nil {
		resp.ErrorCode = errCode(err)
		return resp, err
	}
	resp.ProducerID, resp.ProducerEpoch = id, epoch
	return resp, nil
}

// checkReplicas accepts a manual replica assignment only if it is what
// wisp would pick anyway: this node alone.
func checkReplicas(node int32, replicas []int32) error {
	if len(replicas) != 1 || replicas[0] != node {
		return fmt.Errorf("%w: replicas %v: a single-node wisp can only place a partition on node %d", kerr.InvalidReplicaAssignment, replicas, node)
	}
	return nil
}

func handleCreateTopics(cc *call, req *kmsg.CreateTopicsRequest) (*kmsg.CreateTopicsResponse, error) {
	b := cc.c.s.b
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	var fe firstErr
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		t := kmsg.NewCreateTopicsResponseTopic()
		t.Topic = rt.Topic
		spec, err := createSpec(b, rt)
		if err == nil && seen[rt.Topic] > 1 {
			err = fmt.Errorf("%w: topic %q appears %d times", kerr.InvalidRequest, rt.Topic, seen[rt.Topic])
		}
		var info bus.TopicInfo
		if err == nil {
			if req.ValidateOnly {
				err = validateCreate(b, spec)
			} else {
				info, err = b.CreateTopic(cc.c.ctx, spec)
			}
		}
		if err != nil {
			t.ErrorCode = fe.add(err)
			t.ErrorMessage = errMessage(err)
			resp.Topics = append(resp.Topics, t)
			continue
		}
		if req.ValidateOnly {
			t.NumPartitions, t.ReplicationFactor = spec.Partitions, 1
			if t.NumPartitions <= 0 {
				t.NumPartitions = b.Config().DefaultPartitions
			}
			resp.Topics = append(resp.Topics, t)
			continue
		}
		t.TopicID = info.ID
		t.NumPartitions, t.ReplicationFactor = int32(len(info.Partitions)), info.ReplicationFactor
		for _, c := range topicConfigs(b, info, nil, false, false) {
			tc := kmsg.NewCreateTopicsResponseTopicConfig()
			tc.Name, tc.Value, tc.ReadOnly, tc.Source, tc.IsSensitive = c.Name, c.Value, c.ReadOnly, int8(c.Source), c.IsSensitive
			t.Configs = append(t.Configs, tc)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, fe.err
}

// createSpec turns a CreateTopics topic into a bus.TopicSpec; -1 (v4+)
// means the broker default for partitions and replication factor.
func createSpec(b *bus.Broker, rt kmsg.CreateTopicsRequestTopic) (bus.TopicSpec, error) {
	spec := bus.TopicSpec{Name: rt.Topic, Partitions: rt.NumPartitions, ReplicationFactor: rt.ReplicationFactor}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return spec, fmt.Errorf("%w: a replica assignment needs partitions and replication factor -1", kerr.InvalidRequest)
		}
		for _, a := range rt.ReplicaAssignment {
			if err := checkReplicas(b.NodeID(), a.Replicas); err != nil {
				return spec, err
			}
		}
		spec.Partitions, spec.ReplicationFactor = int32(len(rt.ReplicaAssignment)), 1
	}
	switch {
	case spec.Partitions == -1:
		spec.Partitions = 0
	case spec.Partitions <= 0:
		return spec, fmt.Errorf("%w: %d partitions", kerr.InvalidPartitions, spec.Partitions)
	}
	switch {
	case spec.ReplicationFactor == -1:
		spec.ReplicationFactor = 0
	case spec.ReplicationFactor <= 0:
		return spec, fmt.Errorf("%w: replication factor %d", kerr.InvalidReplicationFactor, spec.ReplicationFactor)
	}
	for _, c := range rt.Configs {
		if c.Value == nil {
			continue // null: the default
		}
		if spec.Configs == nil {
			spec.Configs = map[string]string{}
		}
		spec.Configs[c.Name] = *c.Value
	}
	return spec, nil
}

// validateCreate checks what CreateTopic would check without creating
// anything (validate_only). Config values are only checked for known
// names; the bus checks values when it creates.
func validateCreate(b *bus.Broker, spec bus.TopicSpec) error {
	if err := bus.ValidTopicName(spec.Name); err != nil {
		return err
	}
	if _, err := b.Topic(spec.Name); err == nil {
		return fmt.Errorf("%w: %s", kerr.TopicAlreadyExists, spec.Name)
	}
	if spec.Partitions > 10000 {
		return fmt.Errorf("%w: %d partitions (max 10000)", kerr.InvalidPartitions, spec.Partitions)
	}
	if spec.ReplicationFactor > 1 {
		return fmt.Errorf("%w: replication factor %d on a single node", kerr.InvalidReplicationFactor, spec.ReplicationFactor)
	}
	return checkConfigNames(spec.Configs)
}

func checkConfigNames(configs map[string]string) error {
	for k := range configs {
		if _, ok := bus.KnownConfigs[k]; !ok {
			return fmt.Errorf("%w: unknown config %q", kerr.InvalidConfig, k)
		}
	}
	return nil
}

func handleDeleteTopics(cc *call, req *kmsg.DeleteTopicsRequest) (*kmsg.DeleteTopicsResponse, error) {
	b := cc.c.s.b
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	var fe firstErr
	topics := req.Topics
	if req.Version < 6 {
		topics = nil
		for _, name := range req.TopicNames {
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = kmsg.StringPtr(name)
			topics = append(topics, rt)
		}
	}
	for _, rt := range topics {
		t := kmsg.NewDeleteTopicsResponseTopic()
		t.Topic, t.TopicID = rt.Topic, rt.TopicID
		var name string
		var err error
		if rt.Topic != nil {
			name = *rt.Topic
			if info, terr := b.Topic(name); terr == nil {
				t.TopicID = info.ID
			}
		} else {
			var info bus.TopicInfo
			if info, err = cc.c.s.topicByID(rt.TopicID); err == nil {
				name = info.Name
				t.Topic = kmsg.StringPtr(name)
			}
		}
		if err == nil {
			err = b.DeleteTopic(cc.c.ctx, name)
		}
		if err != nil {
			t.ErrorCode = fe.add(err)
			t.ErrorMessage = errMessage(err)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, fe.err
}

func handleCreatePartitions(cc *call, req *kmsg.CreatePartitionsRequest) (*kmsg.CreatePartitionsResponse, error) {
	b := cc.c.s.b
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	var fe firstErr
	for _, rt := range req.Topics {
		t := kmsg.NewCreatePartitionsResponseTopic()
		t.Topic = rt.Topic
		err := func() error {
			for _, a := range rt.Assignment {
				if err := checkReplicas(b.NodeID(), a.Replicas); err != nil {
					return err
				}
			}
			info, err := b.Topic(rt.Topic)
			if err != nil {
				return err
			}
			if rt.Assignment != nil && len(rt.Assignment) != int(rt.Count)-len(info.Partitions) {
				return fmt.Errorf("%w: %d assignments for %d new partitions", kerr.InvalidReplicaAssignment, len(rt.Assignment), int(rt.Count)-len(info.Partitions))
			}
			if req.ValidateOnly {
				if int(rt.Count) <= len(info.Partitions) || rt.Count > 10000 {
					return fmt.Errorf("%w: %s has %d partitions, asked for %d", kerr.InvalidPartitions, rt.Topic, len(info.Partitions), rt.Count)
				}
				return nil
			}
			return b.AddPartitions(cc.c.ctx, rt.Topic, rt.Count)
		}()
		if err != nil {
			t.ErrorCode = fe.add(err)
			t.ErrorMessage = errMessage(err)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, fe.err
}

// configTypes are the types DescribeConfigs v3+ reports for topic configs.
var configTypes = map[string]kmsg.ConfigType{
	bus.ConfigCleanupPolicy:     kmsg.ConfigTypeList,
	bus.ConfigRetentionMS:       kmsg.ConfigTypeLong,
	bus.ConfigRetentionBytes:    kmsg.ConfigTypeLong,
	bus.ConfigSegmentBytes:      kmsg.ConfigTypeInt,
	bus.ConfigSegmentMS:         kmsg.ConfigTypeLong,
	bus.ConfigFlush:             kmsg.ConfigTypeString,
	bus.ConfigFlushMS:           kmsg.ConfigTypeLong,
	bus.ConfigDeleteRetentionMS: kmsg.ConfigTypeLong,
	bus.ConfigMaxMessageBytes:   kmsg.ConfigTypeInt,
	bus.ConfigMinInsyncReplicas: kmsg.ConfigTypeInt,
	bus.ConfigTimestampType:     kmsg.ConfigTypeString,
}

// configDocs are the documentation strings of DescribeConfigs v3+.
var configDocs = map[string]string{
	bus.ConfigCleanupPolicy:     "delete (retention by age and size), compact (keep the last record of each key), or both.",
	bus.ConfigRetentionMS:       "How long a segment is kept after its last record; -1 keeps forever.",
	bus.ConfigRetentionBytes:    "Largest size of a partition before old segments are deleted; -1 for no limit.",
	bus.ConfigSegmentBytes:      "Size at which a segment file is rolled.",
	bus.ConfigSegmentMS:         "Age at which a segment file is rolled.",
	bus.ConfigFlush:             "wisp: always (fsync before acknowledging, group commit), interval (every flush.ms), or os.",
	bus.ConfigFlushMS:           "Interval between fsyncs with flush=interval.",
	bus.ConfigDeleteRetentionMS: "How long tombstones are kept by compaction.",
	bus.ConfigMaxMessageBytes:   "Largest record batch accepted.",
	bus.ConfigMinInsyncReplicas: "Replicas that must have a batch for acks=all.",
	bus.ConfigTimestampType:     "CreateTime (the producer's) or LogAppendTime (the broker's).",
}

type configEntry = kmsg.DescribeConfigsResponseResourceConfig

// topicConfigs describes a topic's effective configs (names nil: all of
// them): its own overrides, the broker's defaults, then wisp's defaults.
func topicConfigs(b *bus.Broker, info bus.TopicInfo, names []string, synonyms, docs bool) []configEntry {
	brokerDefaults := b.Config().TopicDefaults
	keys := make([]string, 0, len(info.Effective))
	for k := range info.Effective {
		if names == nil || slices.Contains(names, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := make([]configEntry, 0, len(keys))
	for _, k := range keys {
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value = k, kmsg.StringPtr(info.Effective[k])
		c.ConfigType = configTypes[k]
		if c.ConfigType == 0 {
			c.ConfigType = kmsg.ConfigTypeString
		}
		type syn struct {
			v   string
			src kmsg.ConfigSource
		}
		var chain []syn
		if v, ok := info.Configs[k]; ok {
			chain = append(chain, syn{v, kmsg.ConfigSourceDynamicTopicConfig})
		}
		if v, ok := brokerDefaults[k]; ok {
			chain = append(chain, syn{v, kmsg.ConfigSourceStaticBrokerConfig})
		}
		if v, ok := bus.KnownConfigs[k]; ok {
			chain = append(chain, syn{v, kmsg.ConfigSourceDefaultConfig})
		}
		c.Source = kmsg.ConfigSourceDefaultConfig
		if len(chain) > 0 {
			c.Source = chain[0].src
		}
		c.IsDefault = c.Source == kmsg.ConfigSourceDefaultConfig
		if synonyms {
			for _, s := range chain {
				cs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				cs.Name, cs.Value, cs.Source = k, kmsg.StringPtr(s.v), s.src
				c.ConfigSynonyms = append(c.ConfigSynonyms, cs)
			}
		}
		if docs {
			if d, ok := configDocs[k]; ok {
				c.Documentation = kmsg.StringPtr(d)
			}
		}
		out = append(out, c)
	}
	return out
}

// brokerConfigs describes the few broker settings tools look at. They are
// read-only: broker settings come from the command line.
func brokerConfigs(cc *call, names []string, docs bool) []configEntry {
	s := cc.c.s
	bc := s.b.Config()
	listen := s.cfg.Addr
	if a := s.Addr(); a != nil {
		listen = a.String()
	}
	kv := [][2]string{
		{"advertised.listeners", "PLAINTEXT://" + cc.c.host + ":" + strconv.Itoa(int(cc.c.port))},
		{"auto.create.topics.enable", strconv.FormatBool(bc.AutoCreateTopics)},
		{"broker.id", strconv.Itoa(int(bc.NodeID))},
		{"default.replication.factor", "1"},
		{"listeners", "PLAINTEXT://" + listen},
		{"message.max.bytes", bus.KnownConfigs[bus.ConfigMaxMessageBytes]},
		{"num.partitions", strconv.Itoa(int(bc.DefaultPartitions))},
		{"socket.request.max.bytes", strconv.Itoa(s.cfg.MaxRequestBytes)},
	}
	if v, ok := bc.TopicDefaults[bus.ConfigMaxMessageBytes]; ok {
		kv[5][1] = v
	}
	var out []configEntry
	for _, e := range kv {
		if names != nil && !slices.Contains(names, e[0]) {
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value, c.ReadOnly = e[0], kmsg.StringPtr(e[1]), true
		c.Source = kmsg.ConfigSourceStaticBrokerConfig
		c.ConfigType = kmsg.ConfigTypeString
		if docs {
			c.Documentation = kmsg.StringPtr("wisp broker setting, from the command line (read-only).")
		}
		out = append(out, c)
	}
	return out
}

func handleDescribeConfigs(cc *call, req *kmsg.DescribeConfigsRequest) (*kmsg.DescribeConfigsResponse, error) {
	b := cc.c.s.b
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	var fe firstErr
	for _, rr := range req.Resources {
		r := kmsg.NewDescribeConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			var info bus.TopicInfo
			if info, err = b.Topic(rr.ResourceName); err == nil {
				r.Configs = topicConfigs(b, info, rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(b.NodeID())) {
				err = fmt.Errorf("%w: broker %q: this is broker %d", kerr.InvalidRequest, rr.ResourceName, b.NodeID())
				break
			}
			r.Configs = brokerConfigs(cc, rr.ConfigNames, req.IncludeDocumentation)
		default:
			err = fmt.Errorf("%w: resource type %d: wisp describes topics (2) and brokers (4)", kerr.InvalidRequest, rr.ResourceType)
		}
		if err != nil {
			r.ErrorCode = fe.add(err)
			r.ErrorMessage = errMessage(err)
		}
		resp.Resources = append(resp.Resources, r)
	}
	return resp, fe.err
}

var errStaticBroker = fmt.Errorf("%w: broker configs are static in wisp (set them on the command line)", kerr.InvalidRequest)

// handleAlterConfigs replaces a topic's overrides (configs not named
// return to their defaults), as Kafka's non-incremental AlterConfigs does.
func handleAlterConfigs(cc *call, req *kmsg.AlterConfigsRequest) (*kmsg.AlterConfigsResponse, error) {
	b := cc.c.s.b
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	var fe firstErr
	for _, rr := range req.Resources {
		r := kmsg.NewAlterConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			configs := map[string]string{}
			for _, c := range rr.Configs {
				if c.Value != nil {
					configs[c.Name] = *c.Value
				}
			}
			if _, err = b.Topic(rr.ResourceName); err == nil {
				if err = checkConfigNames(configs); err == nil && !req.ValidateOnly {
					err = b.AlterTopicConfigs(cc.c.ctx, rr.ResourceName, configs, false)
				}
			}
		case kmsg.ConfigResourceTypeBroker:
			err = errStaticBroker
		default:
			err = fmt.Errorf("%w: resource type %d", kerr.InvalidRequest, rr.ResourceType)
		}
		if err != nil {
			r.ErrorCode = fe.add(err)
			r.ErrorMessage = errMessage(err)
		}
		resp.Resources = append(resp.Resources, r)
	}
	return resp, fe.err
}

// handleIncrementalAlterConfigs applies SET, DELETE, and APPEND/SUBTRACT
// (list configs, i.e. cleanup.policy) to a topic's overrides.
func handleIncrementalAlterConfigs(cc *call, req *kmsg.IncrementalAlterConfigsRequest) (*kmsg.IncrementalAlterConfigsResponse, error) {
	b := cc.c.s.b
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	var fe firstErr
	for _, rr := range req.Resources {
		r := kmsg.NewIncrementalAlterConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			var info bus.TopicInfo
			if info, err = b.Topic(rr.ResourceName); err != nil {
				break
			}
			var changes map[string]string
			if changes, err = incrementalChanges(info, rr.Configs); err == nil && !req.ValidateOnly {
				err = b.AlterTopicConfigs(cc.c.ctx, rr.ResourceName, changes, true)
			}
		case kmsg.ConfigResourceTypeBroker:
			err = errStaticBroker
		default:
			err = fmt.Errorf("%w: resource type %d", kerr.InvalidRequest, rr.ResourceType)
		}
		if err != nil {
			r.ErrorCode = fe.add(err)
			r.ErrorMessage = errMessage(err)
		}
		resp.Resources = append(resp.Resources, r)
	}
	return resp, fe.err
}

// incrementalChanges turns the operations into the bus's incremental form:
// a value to set, or "" to remove the override.
func incrementalChanges(info bus.TopicInfo, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, error) {
	changes := map[string]string{}
	current := func(k string) string {
		if v, ok := changes[k]; ok {
			return v
		}
		return info.Effective[k]
	}
	for _, op := range ops {
		if _, ok := bus.KnownConfigs[op.Name]; !ok {
			return nil, fmt.Errorf("%w: unknown config %q", kerr.InvalidConfig, op.Name)
		}
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if op.Value == nil || *op.Value == "" {
				return nil, fmt.Errorf("%w: %s: SET needs a value (DELETE restores the default)", kerr.InvalidConfig, op.Name)
			}
			changes[op.Name] = *op.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			changes[op.Name] = ""
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if configTypes[op.Name] != kmsg.ConfigTypeList {
				return nil, fmt.Errorf("%w: %s is not a list config", kerr.InvalidConfig, op.Name)
			}
			items := strings.Split(current(op.Name), ",")
			for _, v := range strings.Split(deref(op.Value), ",") {
				v = strings.TrimSpace(v)
				if v == "" {
					continue
				}
				has := slices.Contains(items, v)
				switch {
				case op.Op == kmsg.IncrementalAlterConfigOpAppend && !has:
					items = append(items, v)
				case op.Op == kmsg.IncrementalAlterConfigOpSubtract && has:
					items = slices.DeleteFunc(items, func(s string) bool { return s == v })
				}
			}
			items = slices.DeleteFunc(items, func(s string) bool { return s == "" })
			if len(items) == 0 {
				return nil, fmt.Errorf("%w: %s would be empty", kerr.InvalidConfig, op.Name)
			}
			changes[op.Name] = strings.Join(items, ",")
		default:
			return nil, fmt.Errorf("%w: %s: unknown operation %d", kerr.InvalidRequest, op.Name, op.Op)
		}
	}
	return changes, nil
}
