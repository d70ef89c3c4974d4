package wire

// The function APIs (0x0030-0x003F): deploy, list, describe, logs, pause,
// resume and delete WASM functions (package functions; docs/functions.md).
// The manifest travels as JSON, the format docs/functions.md documents and
// `POST /v1/functions` takes, so that a field added to the manifest needs
// no new message version; everything a node reports back is binary.
const (
	APIFunctionDeploy   API = 0x0030
	APIFunctionList     API = 0x0031
	APIFunctionDescribe API = 0x0032
	APIFunctionLogs     API = 0x0033 // first frame of a logs stream; the server answers one or more FunctionLogsResponses
	APIFunctionPause    API = 0x0034
	APIFunctionResume   API = 0x0035
	APIFunctionDelete   API = 0x0036
)

// FunctionDeployRequest deploys Module under the manifest's name: a new
// function, or the next version of an existing one.
type FunctionDeployRequest struct {
	// Manifest is the manifest as JSON ({"name": .., "input": ..,
	// "outputs": [..], ...}; docs/functions.md).
	Manifest []byte
	// Module is the WebAssembly module's bytes.
	Module []byte
}

func (*FunctionDeployRequest) API() API { return APIFunctionDeploy }
func (m *FunctionDeployRequest) Codec(c *Coder) {
	c.bytes(&m.Manifest)
	c.bytes(&m.Module)
}

// FunctionInfo summarises one function: its manifest's topics, its state
// and its counters since the node started.
type FunctionInfo struct {
	Name    string
	Input   string
	Outputs []string
	DLQ     string
	State   string // running, paused or failed
	Error   string // why it failed, or its most recent error
	Version int32
	Module  string // hex SHA-256 of the module
	// DeployedMs is when this version was deployed, ms since the epoch.
	DeployedMs   int64
	Lag          int64
	RecordsIn    int64
	RecordsOut   int64
	Errors       int64
	DeadLettered int64
}

func (f *FunctionInfo) codec(c *coder) {
	c.str(&f.Name)
	c.str(&f.Input)
	c.strs(&f.Outputs)
	c.str(&f.DLQ)
	c.str(&f.State)
	c.str(&f.Error)
	c.i32(&f.Version)
	c.str(&f.Module)
	c.i64(&f.DeployedMs)
	c.i64(&f.Lag)
	c.i64(&f.RecordsIn)
	c.i64(&f.RecordsOut)
	c.i64(&f.Errors)
	c.i64(&f.DeadLettered)
}

// functionInfoMin is the smallest encoding of a FunctionInfo: six empty
// strings, an empty array, an i32 and six i64s.
const functionInfoMin = 6*2 + 4 + 4 + 6*8

// FunctionDeployResponse answers a FunctionDeployRequest with the deployed
// version.
type FunctionDeployResponse struct {
	Err
	Function FunctionInfo
}

func (*FunctionDeployResponse) API() API { return APIFunctionDeploy }
func (m *FunctionDeployResponse) Codec(c *Coder) {
	m.Err.codec(c)
	m.Function.codec(c)
}

// FunctionListRequest lists the functions of the node.
type FunctionListRequest struct{}

func (*FunctionListRequest) API() API     { return APIFunctionList }
func (*FunctionListRequest) Codec(*Coder) {}

// FunctionListResponse answers it, sorted by name.
type FunctionListResponse struct {
	Err
	Functions []FunctionInfo
}

func (*FunctionListResponse) API() API { return APIFunctionList }
func (m *FunctionListResponse) Codec(c *Coder) {
	m.Err.codec(c)
	array(c, &m.Functions, functionInfoMin, (*FunctionInfo).codec)
}

// FunctionNameRequest names one function: the request of Describe, Pause,
// Resume and Delete, told apart by Key.
type FunctionNameRequest struct {
	Key  API
	Name string
}

func (m *FunctionNameRequest) API() API       { return m.Key }
func (m *FunctionNameRequest) Codec(c *Coder) { c.str(&m.Name) }

// FunctionPartition is one input partition of a function.
type FunctionPartition struct {
	Partition int32
	// Worker is the worker's state on the node (starting, running, idle,
	// retrying, waiting), "" when no worker runs the partition.
	Worker        string
	Committed     int64 // -1: nothing committed yet
	HighWatermark int64
	Lag           int64
	// PendingEnd is the end of the input unit being written (or to be
	// replayed after a crash), 0 when none.
	PendingEnd    int64
	ProducerID    int64
	ProducerEpoch int16
	RecordsIn     int64
	RecordsOut    int64
	Errors        int64
	DeadLettered  int64
	LastError     string
	LastErrorMs   int64 // ms since the epoch, 0 when none
}

func (p *FunctionPartition) codec(c *coder) {
	c.i32(&p.Partition)
	c.str(&p.Worker)
	c.i64(&p.Committed)
	c.i64(&p.HighWatermark)
	c.i64(&p.Lag)
	c.i64(&p.PendingEnd)
	c.i64(&p.ProducerID)
	c.i16(&p.ProducerEpoch)
	c.i64(&p.RecordsIn)
	c.i64(&p.RecordsOut)
	c.i64(&p.Errors)
	c.i64(&p.DeadLettered)
	c.str(&p.LastError)
	c.i64(&p.LastErrorMs)
}

// FunctionDescribeResponse answers a describe FunctionNameRequest.
type FunctionDescribeResponse struct {
	Err
	Function FunctionInfo
	// Manifest is the version's manifest as JSON, defaults filled in.
	Manifest []byte
	// Group is the consumer group holding the committed input offsets.
	Group      string
	Partitions []FunctionPartition
	// The module's instances on the node: live (of which idle), created
	// and discarded after a failure since the version was deployed.
	InstancesLive, InstancesIdle         int32
	InstancesCreated, InstancesDiscarded int64
}

func (*FunctionDescribeResponse) API() API { return APIFunctionDescribe }
func (m *FunctionDescribeResponse) Codec(c *Coder) {
	m.Err.codec(c)
	m.Function.codec(c)
	c.bytes(&m.Manifest)
	c.str(&m.Group)
	array(c, &m.Partitions, 4+2+9*8+2+2+8, (*FunctionPartition).codec)
	c.i32(&m.InstancesLive)
	c.i32(&m.InstancesIdle)
	c.i64(&m.InstancesCreated)
	c.i64(&m.InstancesDiscarded)
}

// FunctionLogsRequest reads a function's log: the lines kept since SinceMs
// (ms since the epoch; 0: all kept), and with Follow every new line until
// the client closes the stream. It is the first and only frame the client
// sends on its stream.
type FunctionLogsRequest struct {
	Name    string
	SinceMs int64
	Follow  bool
}

func (*FunctionLogsRequest) API() API { return APIFunctionLogs }
func (m *FunctionLogsRequest) Codec(c *Coder) {
	c.str(&m.Name)
	c.i64(&m.SinceMs)
	c.boolean(&m.Follow)
}

// FunctionLogLine is one line of a function's log.
type FunctionLogLine struct {
	TimeMs int64  // ms since the epoch
	Stream string // stdout, stderr (the module's) or wisp (the host's)
	Text   string
}

func (l *FunctionLogLine) codec(c *coder) {
	c.i64(&l.TimeMs)
	c.str(&l.Stream)
	c.str(&l.Text)
}

// FunctionLogsResponse carries log lines, oldest first. The first answers
// the request (with its Err); when following, more come as lines are
// written, and the server closes the stream when the function is deleted.
type FunctionLogsResponse struct {
	Err
	Lines []FunctionLogLine
}

func (*FunctionLogsResponse) API() API { return APIFunctionLogs }
func (m *FunctionLogsResponse) Codec(c *Coder) {
	m.Err.codec(c)
	array(c, &m.Lines, 12, (*FunctionLogLine).codec)
}

// newFunctionRequest is NewRequest for the function APIs.
func newFunctionRequest(a API) Message {
	switch a {
	case APIFunctionDeploy:
		return new(FunctionDeployRequest)
	case APIFunctionList:
		return new(FunctionListRequest)
	case APIFunctionDescribe, APIFunctionPause, APIFunctionResume, APIFunctionDelete:
		return &FunctionNameRequest{Key: a}
	case APIFunctionLogs:
		return new(FunctionLogsRequest)
	}
	return nil
}

// newFunctionResponse is NewResponse for the function APIs.
func newFunctionResponse(a API) Message {
	switch a {
	case APIFunctionDeploy:
		return new(FunctionDeployResponse)
	case APIFunctionList:
		return new(FunctionListResponse)
	case APIFunctionDescribe:
		return new(FunctionDescribeResponse)
	case APIFunctionLogs:
		return new(FunctionLogsResponse)
	case APIFunctionPause, APIFunctionResume, APIFunctionDelete:
		return &SimpleResponse{Key: a}
	}
	return nil
}
