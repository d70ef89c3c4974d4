package wire

import (
	"testing"
)

// functionSamples are samples() of the function APIs: every request and
// response filled in, so that the round-trip test, the fuzz seeds and
// testdata/fuzz cover them like every other message.
func functionSamples() []Message {
	info := FunctionInfo{Name: "mask", Input: "in", Outputs: []string{"out", "other"}, DLQ: "dlq", State: "running",
		Error: "boom", Version: 3, Module: "ab12", DeployedMs: 1700000000000, Lag: 4, RecordsIn: 10, RecordsOut: 9,
		Errors: 1, DeadLettered: 1}
	return []Message{
		&FunctionDeployRequest{Manifest: []byte(`{"name":"mask","input":"in","outputs":["out"]}`), Module: []byte("\x00asm\x01\x00\x00\x00")},
		&FunctionDeployResponse{Function: info},
		&FunctionDeployResponse{Err: Err{Code: 42, Message: "wasm: invalid module: no export"}},
		&FunctionListRequest{},
		&FunctionListResponse{Functions: []FunctionInfo{info, {Name: "empty"}}},
		&FunctionNameRequest{Key: APIFunctionDescribe, Name: "mask"},
		&FunctionDescribeResponse{Function: info, Manifest: []byte(`{"name":"mask"}`), Group: "wisp.fn.mask",
			Partitions: []FunctionPartition{{Partition: 1, Worker: "idle", Committed: 5, HighWatermark: 9, Lag: 4, PendingEnd: 7,
				ProducerID: 12, ProducerEpoch: 2, RecordsIn: 5, RecordsOut: 4, Errors: 1, DeadLettered: 1,
				LastError: "trap", LastErrorMs: 1700000000001}, {Partition: 2, Committed: -1}},
			InstancesLive: 2, InstancesIdle: 1, InstancesCreated: 3, InstancesDiscarded: 1},
		&FunctionLogsRequest{Name: "mask", SinceMs: 1700000000000, Follow: true},
		&FunctionLogsResponse{Lines: []FunctionLogLine{{TimeMs: 1, Stream: "stdout", Text: "hello"}, {TimeMs: 2, Stream: "wisp", Text: "paused"}}},
		&FunctionNameRequest{Key: APIFunctionPause, Name: "mask"},
		&SimpleResponse{Key: APIFunctionPause},
		&FunctionNameRequest{Key: APIFunctionResume, Name: "mask"},
		&SimpleResponse{Key: APIFunctionResume, Err: Err{Code: 91, Message: "functions: no such function"}},
		&FunctionNameRequest{Key: APIFunctionDelete, Name: "mask"},
		&SimpleResponse{Key: APIFunctionDelete},
	}
}

// Every function API has a name, a request and a response, and stays in
// the range the function APIs own.
func TestFunctionAPIs(t *testing.T) {
	for a := APIFunctionDeploy; a <= APIFunctionDelete; a++ {
		if !a.Known() {
			t.Errorf("%s has no name", a)
		}
		if NewRequest(a) == nil || NewResponse(a) == nil {
			t.Errorf("%s: request %v, response %v", a, NewRequest(a), NewResponse(a))
		}
		if a < 0x0030 || a > 0x003F {
			t.Errorf("%s outside 0x0030-0x003F", a)
		}
		if m := NewRequest(a); m.API() != a {
			t.Errorf("NewRequest(%s).API() = %s", a, m.API())
		}
	}
}
