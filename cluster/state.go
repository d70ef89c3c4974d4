package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
)

// Errors of this package that have no Kafka error code. They survive
// forwarding between nodes (errors.Is works on the caller's side).
var (
	// ErrClosed is returned by calls on a closed Node.
	ErrClosed = errors.New("cluster: node closed")
	// ErrUnknownFunction is returned by DeleteFunction for a name that is
	// not deployed.
	ErrUnknownFunction = errors.New("cluster: unknown function")
	// ErrModuleTooLarge is returned by PutFunction for a module above
	// MaxModuleBytes.
	ErrModuleTooLarge = errors.New("cluster: function module too large for the metadata log")
)

// sentinels are the errors above by their wire name.
var sentinels = map[string]error{
	"closed":           ErrClosed,
	"unknown_function": ErrUnknownFunction,
	"module_too_large": ErrModuleTooLarge,
}

// MaxModuleBytes is the largest function module kept in the metadata log
// (and so in every snapshot). Larger modules need another store.
const MaxModuleBytes = 8 << 20

// Function is a deployed function as the metadata holds it: an opaque
// manifest (its schema belongs to package functions) and the SHA-256 of
// its module, whose bytes are kept by content address.
type Function struct {
	Name         string          `json:"name"`
	Manifest     json.RawMessage `json:"manifest"`
	ModuleSHA256 string          `json:"module_sha256"` // hex
}

// nodeRecord is a registered node.
type nodeRecord struct {
	ID    int32  `json:"id"`
	QUIC  string `json:"quic"`
	Kafka string `json:"kafka,omitempty"`
	HTTP  string `json:"http,omitempty"`
	Rack  string `json:"rack,omitempty"`
	// Gossip is the node's gossip address: a restarted node started
	// without Join finds the cluster again through it.
	Gossip string `json:"gossip,omitempty"`
}

// state is the replicated metadata: what the FSM holds and snapshots
// (as JSON). apply is its only mutator, and is deterministic.
type state struct {
	Nodes          map[int32]nodeRecord      `json:"nodes"`
	Topics         map[string]bus.TopicState `json:"topics"`
	NextProducerID int64                     `json:"next_producer_id"`
	// Cursor rotates the first node of new topics' placements.
	Cursor    int32               `json:"placement_cursor"`
	Functions map[string]Function `json:"functions"`
	Modules   map[string][]byte   `json:"modules"` // by hex SHA-256
	// Index is the log index of the last applied command.
	Index uint64 `json:"index"`
}

func newState() *state {
	return &state{
		Nodes:     map[int32]nodeRecord{},
		Topics:    map[string]bus.TopicState{},
		Functions: map[string]Function{},
		Modules:   map[string][]byte{},
	}
}

// Command operations.
const (
	opRegisterNode    = "register_node"
	opRemoveNode      = "remove_node"
	opCreateTopic     = "create_topic"
	opDeleteTopic     = "delete_topic"
	opAlterConfigs    = "alter_configs"
	opAddPartitions   = "add_partitions"
	opAlterISR        = "alter_isr"
	opUpdatePartition = "update_partition"
	opAllocatePIDs    = "allocate_producer_ids"
	opPutFunction     = "put_function"
	opDeleteFunction  = "delete_function"
)

// command is one entry of the metadata log. Every decision is explicit in
// it (placements, topic ids, new leaders), so applying it needs nothing
// but the state.
type command struct {
	Op string `json:"op"`

	Node  *nodeRecord     `json:"node,omitempty"`  // register_node
	Topic *bus.TopicState `json:"topic,omitempty"` // create_topic

	Name        string                    `json:"name,omitempty"` // topic or function
	Configs     map[string]string         `json:"configs,omitempty"`
	Incremental bool                      `json:"incremental,omitempty"`
	Partitions  []bus.PartitionAssignment `json:"partitions,omitempty"` // add_partitions

	// alter_isr: From is the requesting leader, LeaderEpoch its epoch.
	// update_partition: LeaderEpoch is the epoch the plan was made at;
	// Leader the new leader (the epoch grows when it changes).
	Partition   int32   `json:"partition,omitempty"`
	From        int32   `json:"from,omitempty"`
	LeaderEpoch int32   `json:"leader_epoch,omitempty"`
	Leader      int32   `json:"leader,omitempty"`
	ISR         []int32 `json:"isr,omitempty"`

	N int64 `json:"n,omitempty"` // allocate_producer_ids

	Function *Function `json:"function,omitempty"`
	Module   []byte    `json:"module,omitempty"`
}

// applyResult is what applying a command returns (through raft's
// ApplyFuture.Response on the controller).
type applyResult struct {
	First int64 // allocate_producer_ids
	Err   error
}

// effect is what the FSM tells the Applier after a command.
type effect struct {
	topic    *bus.TopicState // changed or created
	deleted  string          // topic deleted
	function *Function       // put
	fdeleted string          // function deleted
}

// apply applies c at log index idx. It never fails the log: a command
// that does not fit the state (a race the controller lost) is refused in
// the result and changes nothing.
func (s *state) apply(idx uint64, c command) (applyResult, effect) {
	s.Index = idx
	switch c.Op {
	case opRegisterNode:
		if c.Node == nil || c.Node.ID <= 0 {
			return fail(kerr.InvalidRequest, "register_node without a node")
		}
		s.Nodes[c.Node.ID] = *c.Node
		return applyResult{}, effect{}

	case opRemoveNode:
		if c.Node == nil {
			return fail(kerr.InvalidRequest, "remove_node without a node")
		}
		if _, ok := s.Nodes[c.Node.ID]; !ok {
			return fail(kerr.InvalidRequest, fmt.Sprintf("node %d is not registered", c.Node.ID))
		}
		delete(s.Nodes, c.Node.ID)
		return applyResult{}, effect{}

	case opCreateTopic:
		if c.Topic == nil {
			return fail(kerr.InvalidRequest, "create_topic without a topic")
		}
		t := cloneTopic(*c.Topic)
		if _, ok := s.Topics[t.Name]; ok {
			return fail(kerr.TopicAlreadyExists, t.Name)
		}
		if len(t.Partitions) == 0 {
			return fail(kerr.InvalidPartitions, "no partitions")
		}
		for i, p := range t.Partitions {
			if p.Partition != int32(i) || len(p.Replicas) != int(t.ReplicationFactor) {
				return fail(kerr.InvalidReplicaAssignment, fmt.Sprintf("partition %d", i))
			}
		}
		s.Topics[t.Name] = t
		s.Cursor++
		return applyResult{}, effect{topic: ptr(cloneTopic(t))}

	case opDeleteTopic:
		if _, ok := s.Topics[c.Name]; !ok {
			return fail(kerr.UnknownTopicOrPartition, c.Name)
		}
		delete(s.Topics, c.Name)
		return applyResult{}, effect{deleted: c.Name}

	case opAlterConfigs:
		t, ok := s.Topics[c.Name]
		if !ok {
			return fail(kerr.UnknownTopicOrPartition, c.Name)
		}
		t = cloneTopic(t)
		t.Configs = mergeConfigs(t.Configs, c.Configs, c.Incremental)
		s.Topics[c.Name] = t
		return applyResult{}, effect{topic: ptr(cloneTopic(t))}

	case opAddPartitions:
		t, ok := s.Topics[c.Name]
		if !ok {
			return fail(kerr.UnknownTopicOrPartition, c.Name)
		}
		if len(c.Partitions) == 0 {
			return fail(kerr.InvalidPartitions, "no new partitions")
		}
		t = cloneTopic(t)
		for i, p := range c.Partitions {
			if p.Partition != int32(len(t.Partitions)+i) || len(p.Replicas) != int(t.ReplicationFactor) {
				return fail(kerr.InvalidPartitions, fmt.Sprintf("%s: partition %d does not follow %d partitions",
					c.Name, p.Partition, len(t.Partitions)))
			}
		}
		t.Partitions = append(t.Partitions, clonePartitions(c.Partitions)...)
		s.Topics[c.Name] = t
		return applyResult{}, effect{topic: ptr(cloneTopic(t))}

	case opAlterISR:
		t, p, res, ok := s.partition(c.Name, c.Partition)
		if !ok {
			return res, effect{}
		}
		cur := t.Partitions[p]
		switch {
		case c.LeaderEpoch < cur.LeaderEpoch:
			return fail(kerr.FencedLeaderEpoch, fmt.Sprintf("%s/%d: epoch %d, current %d", c.Name, c.Partition, c.LeaderEpoch, cur.LeaderEpoch))
		case c.LeaderEpoch > cur.LeaderEpoch:
			return fail(kerr.UnknownLeaderEpoch, fmt.Sprintf("%s/%d: epoch %d, current %d", c.Name, c.Partition, c.LeaderEpoch, cur.LeaderEpoch))
		case c.From != cur.Leader:
			return fail(kerr.NotLeaderForPartition, fmt.Sprintf("%s/%d: node %d is not the leader (%d)", c.Name, c.Partition, c.From, cur.Leader))
		}
		if err := checkISR(cur, c.ISR); err != nil {
			return applyResult{Err: err}, effect{}
		}
		cur.ISR = slices.Clone(c.ISR)
		t = cloneTopic(t)
		t.Partitions[p] = cur
		s.Topics[c.Name] = t
		return applyResult{}, effect{topic: ptr(cloneTopic(t))}

	case opUpdatePartition:
		t, p, res, ok := s.partition(c.Name, c.Partition)
		if !ok {
			return res, effect{}
		}
		cur := t.Partitions[p]
		if c.LeaderEpoch != cur.LeaderEpoch {
			return fail(kerr.FencedLeaderEpoch, fmt.Sprintf("%s/%d: planned at epoch %d, current %d", c.Name, c.Partition, c.LeaderEpoch, cur.LeaderEpoch))
		}
		if c.Leader != -1 && !slices.Contains(cur.Replicas, c.Leader) {
			return fail(kerr.InvalidRequest, fmt.Sprintf("%s/%d: leader %d is not a replica", c.Name, c.Partition, c.Leader))
		}
		t = cloneTopic(t)
		if c.Leader != cur.Leader {
			cur.LeaderEpoch++
		}
		cur.Leader = c.Leader
		cur.ISR = slices.Clone(c.ISR)
		cur.Replicas = slices.Clone(cur.Replicas)
		t.Partitions[p] = cur
		s.Topics[c.Name] = t
		return applyResult{}, effect{topic: ptr(cloneTopic(t))}

	case opAllocatePIDs:
		if c.N <= 0 || c.N > 1<<20 {
			return fail(kerr.InvalidRequest, fmt.Sprintf("allocate %d producer ids", c.N))
		}
		first := s.NextProducerID
		s.NextProducerID += c.N
		return applyResult{First: first}, effect{}

	case opPutFunction:
		f := c.Function
		if f == nil || f.Name == "" {
			return fail(kerr.InvalidRequest, "put_function without a function")
		}
		if c.Module != nil {
			if len(c.Module) > MaxModuleBytes {
				return applyResult{Err: ErrModuleTooLarge}, effect{}
			}
			sum := sha256.Sum256(c.Module)
			if hex.EncodeToString(sum[:]) != f.ModuleSHA256 {
				return fail(kerr.InvalidRequest, "module does not match its sha256")
			}
			s.Modules[f.ModuleSHA256] = slices.Clone(c.Module)
		}
		nf := Function{Name: f.Name, Manifest: slices.Clone(f.Manifest), ModuleSHA256: f.ModuleSHA256}
		s.Functions[f.Name] = nf
		s.gcModules()
		return applyResult{}, effect{function: &nf}

	case opDeleteFunction:
		if _, ok := s.Functions[c.Name]; !ok {
			return applyResult{Err: fmt.Errorf("%w: %s", ErrUnknownFunction, c.Name)}, effect{}
		}
		delete(s.Functions, c.Name)
		s.gcModules()
		return applyResult{}, effect{fdeleted: c.Name}
	}
	return fail(kerr.InvalidRequest, "unknown command "+c.Op)
}

func fail(code *kerr.Error, detail string) (applyResult, effect) {
	return applyResult{Err: fmt.Errorf("%w: %s", code, detail)}, effect{}
}

func ptr[T any](v T) *T { return &v }

// partition finds a topic's partition.
func (s *state) partition(topic string, partition int32) (bus.TopicState, int, applyResult, bool) {
	t, ok := s.Topics[topic]
	if !ok || partition < 0 || int(partition) >= len(t.Partitions) {
		res, _ := fail(kerr.UnknownTopicOrPartition, fmt.Sprintf("%s/%d", topic, partition))
		return t, 0, res, false
	}
	return t, int(partition), applyResult{}, true
}

// checkISR checks a leader's proposed ISR: replicas only, no duplicates,
// the leader included.
func checkISR(p bus.PartitionAssignment, isr []int32) error {
	if !slices.Contains(isr, p.Leader) {
		return fmt.Errorf("%w: ISR %v leaves out the leader %d", kerr.InvalidRequest, isr, p.Leader)
	}
	for i, r := range isr {
		if !slices.Contains(p.Replicas, r) || slices.Contains(isr[:i], r) {
			return fmt.Errorf("%w: ISR %v is not a set of the replicas %v", kerr.InvalidRequest, isr, p.Replicas)
		}
	}
	return nil
}

// gcModules drops module bytes no function refers to.
func (s *state) gcModules() {
	used := map[string]bool{}
	for _, f := range s.Functions {
		used[f.ModuleSHA256] = true
	}
	for sum := range s.Modules {
		if !used[sum] {
			delete(s.Modules, sum)
		}
	}
}

// mergeConfigs returns cur with configs applied: replaced, or, when
// incremental, keys set and keys mapped to "" removed (as bus does).
func mergeConfigs(cur, configs map[string]string, incremental bool) map[string]string {
	next := map[string]string{}
	if incremental {
		maps.Copy(next, cur)
	}
	for k, v := range configs {
		if v == "" && incremental {
			delete(next, k)
			continue
		}
		next[k] = v
	}
	return next
}

func cloneTopic(t bus.TopicState) bus.TopicState {
	t.Configs = maps.Clone(t.Configs)
	t.Partitions = clonePartitions(t.Partitions)
	return t
}

func clonePartitions(ps []bus.PartitionAssignment) []bus.PartitionAssignment {
	out := make([]bus.PartitionAssignment, len(ps))
	for i, p := range ps {
		p.Replicas = slices.Clone(p.Replicas)
		p.ISR = slices.Clone(p.ISR)
		out[i] = p
	}
	return out
}

// sortedTopics returns the topic names in order.
func (s *state) sortedTopics() []string {
	return slices.Sorted(maps.Keys(s.Topics))
}
