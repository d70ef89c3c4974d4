package httpapi

import (
	"encoding/base64"
	"errors"
	"net/http"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/bus/group"
)

// topicJSON describes a topic in the admin API.
type topicJSON struct {
	Name              string            `json:"name"`
	ID                string            `json:"id"` // base64url, as Kafka prints topic ids
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs"`                     // the topic's own overrides
	Effective         map[string]string `json:"effective_configs,omitempty"` // GET /v1/topics/{topic} only
	Partitions        []partitionJSON   `json:"partitions"`
}

type partitionJSON struct {
	Partition      int32   `json:"partition"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leader_epoch"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	LogStartOffset int64   `json:"log_start_offset"`
	HighWatermark  int64   `json:"high_watermark"`
	EndOffset      int64   `json:"end_offset"`
	SizeBytes      int64   `json:"size_bytes"`
	RecordsIn      int64   `json:"records_in"`
	BytesIn        int64   `json:"bytes_in"`
	RecordsOut     int64   `json:"records_out"`
	BytesOut       int64   `json:"bytes_out"`
}

func newTopicJSON(t bus.TopicInfo, effective bool) topicJSON {
	out := topicJSON{Name: t.Name, ID: base64.RawURLEncoding.EncodeToString(t.ID[:]),
		ReplicationFactor: t.ReplicationFactor, Configs: t.Configs, Partitions: make([]partitionJSON, 0, len(t.Partitions))}
	if out.Configs == nil {
		out.Configs = map[string]string{}
	}
	if effective {
		out.Effective = t.Effective
	}
	for _, p := range t.Partitions {
		out.Partitions = append(out.Partitions, partitionJSON{
			Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Replicas: p.Replicas, ISR: p.ISR,
			LogStartOffset: p.LogStartOffset, HighWatermark: p.HighWatermark, EndOffset: p.EndOffset, SizeBytes: p.SizeBytes,
			RecordsIn: p.Stats.RecordsIn, BytesIn: p.Stats.BytesIn, RecordsOut: p.Stats.RecordsOut, BytesOut: p.Stats.BytesOut,
		})
	}
	return out
}

func topicError(name string, err error) error {
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return &Error{Code: CodeTopicNotFound, Message: "topic \"" + name + "\" not found", err: err}
	}
	return err
}

// handleListTopics is GET /v1/topics: {"topics":[topic, ..]} sorted by name.
func (s *Server) handleListTopics(w http.ResponseWriter, r *http.Request) {
	ts := s.b.Topics()
	out := make([]topicJSON, 0, len(ts))
	for _, t := range ts {
		out = append(out, newTopicJSON(t, false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"topics": out})
}

// handleGetTopic is GET /v1/topics/{topic}.
func (s *Server) handleGetTopic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("topic")
	t, err := s.b.Topic(name)
	if err != nil {
		WriteError(w, topicError(name, err))
		return
	}
	writeJSON(w, http.StatusOK, newTopicJSON(t, true))
}

type createTopicBody struct {
	Name              string            `json:"name"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs"`
}

// handleCreateTopic is POST /v1/topics {"name","partitions","replication_factor","configs"}:
// 201 with the topic, 40901 if it exists, 42202 if the spec is invalid.
func (s *Server) handleCreateTopic(w http.ResponseWriter, r *http.Request) {
	if mt := mediaType(r.Header.Get("Content-Type")); mt != "" && mt != ctJSON {
		WriteError(w, errorf(CodeUnsupportedType, "Content-Type %q: want %s", mt, ctJSON))
		return
	}
	buf, err := s.readBody(w, r)
	if err != nil {
		WriteError(w, err)
		return
	}
	var body createTopicBody
	err = decodeStrict(buf.Bytes(), &body)
	putBody(buf)
	if err != nil {
		e := toError(err)
		if e.Code == CodeInvalidRecord {
			e.Code = CodeInvalidTopic
		}
		WriteError(w, e)
		return
	}
	if body.Name == "" {
		WriteError(w, errorf(CodeInvalidTopic, `"name" is required`))
		return
	}
	info, err := s.b.CreateTopic(r.Context(), bus.TopicSpec{Name: body.Name, Partitions: body.Partitions,
		ReplicationFactor: body.ReplicationFactor, Configs: body.Configs})
	if err != nil {
		WriteError(w, err)
		return
	}
	w.Header().Set("Location", "/v1/topics/"+info.Name)
	writeJSON(w, http.StatusCreated, newTopicJSON(info, true))
}

// handleDeleteTopic is DELETE /v1/topics/{topic}: 204, or 40401.
func (s *Server) handleDeleteTopic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("topic")
	if err := s.b.DeleteTopic(r.Context(), name); err != nil {
		WriteError(w, topicError(name, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// groupJSON is a consumer group with its committed offsets and lag.
type groupJSON struct {
	Group        string              `json:"group"`
	ProtocolType string              `json:"protocol_type"`
	State        string              `json:"state"`
	Lag          int64               `json:"lag"` // sum over partitions
	Partitions   []groupPartitionLag `json:"partitions"`
}

type groupPartitionLag struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	Committed     int64  `json:"committed_offset"`
	HighWatermark int64  `json:"high_watermark"`
	Lag           int64  `json:"lag"` // high_watermark - committed_offset, at least 0
}

// groupLags lists every group with the lag of each committed partition.
// Partitions of deleted topics are left out.
func groupLags(b *bus.Broker) ([]groupJSON, error) {
	coord := b.Groups()
	groups := coord.ListGroups()
	out := make([]groupJSON, 0, len(groups))
	for _, g := range groups {
		offs, err := coord.FetchOffsets(g.Group, nil)
		if errors.Is(err, group.ErrClosed) {
			return nil, err
		}
		gj := groupJSON{Group: g.Group, ProtocolType: g.ProtocolType, State: g.State, Partitions: []groupPartitionLag{}}
		for tp, oc := range offs {
			if oc.Offset < 0 {
				continue
			}
			hw, _, err := b.ListOffset(tp.Topic, tp.Partition, bus.Latest)
			if err != nil {
				continue
			}
			lag := max(hw-oc.Offset, 0)
			gj.Partitions = append(gj.Partitions, groupPartitionLag{Topic: tp.Topic, Partition: tp.Partition,
				Committed: oc.Offset, HighWatermark: hw, Lag: lag})
			gj.Lag += lag
		}
		sort.Slice(gj.Partitions, func(i, j int) bool {
			a, b := gj.Partitions[i], gj.Partitions[j]
			return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
		})
		out = append(out, gj)
	}
	return out, nil
}

// handleGroups is GET /v1/groups: {"groups":[group, ..]} with lag per
// partition (high watermark - committed offset).
func (s *Server) handleGroups(w http.ResponseWriter, r *http.Request) {
	gs, err := groupLags(s.b)
	if err != nil {
		WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": gs})
}
