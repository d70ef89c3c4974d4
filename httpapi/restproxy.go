package httpapi

import (
	"net/http"
	"strconv"

	"github.com/wispbus/wisp/bus"
)

// The Confluent REST Proxy v2 subset: produce in the json and binary
// embedded formats, and topic metadata. Answers are
// application/vnd.kafka.v2+json; errors are {"error_code","message"} with
// the codes of the package table (40401, 40402, 42201, ...). As in REST
// Proxy, a record that the broker refuses is reported in its "offsets"
// entry with error_code 50002 (or 50003 when retriable) and HTTP 200.

// v2Offset is one entry of a v2 produce answer.
type v2Offset struct {
	Partition *int32  `json:"partition"`
	Offset    *int64  `json:"offset"`
	ErrorCode *int    `json:"error_code"`
	Error     *string `json:"error"`
}

type v2ProduceResponse struct {
	KeySchemaID   *int       `json:"key_schema_id"`
	ValueSchemaID *int       `json:"value_schema_id"`
	Offsets       []v2Offset `json:"offsets"`
}

// v2Error writes err in the v2 content type.
func v2Error(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", ctV2)
	WriteError(w, err)
}

// handleV2Produce is POST /topics/{topic} and
// POST /topics/{topic}/partitions/{partition}.
func (s *Server) handleV2Produce(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	partition := int32(-1)
	if ps := r.PathValue("partition"); ps != "" {
		n, err := strconv.ParseInt(ps, 10, 32)
		if err != nil || n < 0 {
			v2Error(w, errorf(CodePartitionNotFound, "partition %q not found", ps))
			return
		}
		partition = int32(n)
	}
	var f valueFormat
	switch mt := mediaType(r.Header.Get("Content-Type")); mt {
	case ctV2JSON:
		f = formatJSONText
	case ctV2Binary:
		f = formatBinary
	case "application/vnd.kafka.avro.v2+json", "application/vnd.kafka.jsonschema.v2+json", "application/vnd.kafka.protobuf.v2+json":
		v2Error(w, errorf(CodeUnsupportedType, "Content-Type %q: schema formats are not supported; use %s or %s", mt, ctV2JSON, ctV2Binary))
		return
	default:
		v2Error(w, errorf(CodeUnsupportedType, "Content-Type %q: want %s or %s", mt, ctV2JSON, ctV2Binary))
		return
	}
	buf, err := s.readBody(w, r)
	if err != nil {
		v2Error(w, err)
		return
	}
	recs, err := decodeV2Body(buf.Bytes(), f)
	putBody(buf)
	if err != nil {
		v2Error(w, err)
		return
	}
	if partition >= 0 {
		for i := range recs {
			recs[i].partition = partition
		}
	}
	info, err := s.ensureTopic(r.Context(), topic)
	if err != nil {
		v2Error(w, err)
		return
	}
	p := s.makePlan(info, recs, nil)
	if e := p.firstError(); e != nil {
		v2Error(w, e)
		return
	}
	ds := s.execute(r.Context(), p, bus.AcksAll)
	resp := v2ProduceResponse{Offsets: make([]v2Offset, len(ds))}
	for i, d := range ds {
		if d.err != nil {
			code := CodeBroker
			if d.err.Code == CodeRetriable {
				code = CodeRetriable
			}
			msg := d.err.Message
			resp.Offsets[i] = v2Offset{ErrorCode: &code, Error: &msg}
			continue
		}
		resp.Offsets[i] = v2Offset{Partition: &d.partition, Offset: &d.offset}
	}
	w.Header().Set("Content-Type", ctV2)
	writeJSON(w, http.StatusOK, resp)
}

// handleV2Topics is GET /topics: the topic names.
func (s *Server) handleV2Topics(w http.ResponseWriter, r *http.Request) {
	ts := s.b.Topics()
	names := make([]string, 0, len(ts))
	for _, t := range ts {
		names = append(names, t.Name)
	}
	w.Header().Set("Content-Type", ctV2)
	writeJSON(w, http.StatusOK, names)
}

type v2Replica struct {
	Broker int32 `json:"broker"`
	Leader bool  `json:"leader"`
	InSync bool  `json:"in_sync"`
}

type v2Partition struct {
	Partition int32       `json:"partition"`
	Leader    int32       `json:"leader"`
	Replicas  []v2Replica `json:"replicas"`
}

type v2Topic struct {
	Name       string            `json:"name"`
	Configs    map[string]string `json:"configs"`
	Partitions []v2Partition     `json:"partitions"`
}

// handleV2Topic is GET /topics/{topic}.
func (s *Server) handleV2Topic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("topic")
	t, err := s.b.Topic(name)
	if err != nil {
		v2Error(w, topicError(name, err))
		return
	}
	out := v2Topic{Name: t.Name, Configs: t.Effective, Partitions: make([]v2Partition, 0, len(t.Partitions))}
	for _, p := range t.Partitions {
		vp := v2Partition{Partition: p.Partition, Leader: p.Leader, Replicas: []v2Replica{}}
		for _, id := range p.Replicas {
			in := false
			for _, i := range p.ISR {
				in = in || i == id
			}
			vp.Replicas = append(vp.Replicas, v2Replica{Broker: id, Leader: id == p.Leader, InSync: in})
		}
		out.Partitions = append(out.Partitions, vp)
	}
	w.Header().Set("Content-Type", ctV2)
	writeJSON(w, http.StatusOK, out)
}
