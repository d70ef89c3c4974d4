package kafkaapi

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const apiVersionsKey int16 = 18

// An api is one Kafka API the server answers, the versions it handles
// (all advertised in ApiVersions) and its handler. A handler finishes its
// call exactly once, on the reader goroutine or on one started with
// call.goAsync.
type api struct {
	key, min, max int16
	handle        func(cc *call, req kmsg.Request)
}

// apis is sorted by key. It is filled in init because ApiVersions reads it.
var apis []api

// The version ranges: every version kmsg encodes up to the newest that
// kafka-python 2.0.2, librdkafka 2.x and franz-go 1.22 use and that does
// not need something wisp lacks. The reasons for each maximum are in
// doc.go.
func init() {
	apis = []api{
		{0, 0, 11, handler(handleProduce)},
		{1, 4, 16, handler(handleFetch)},
		{2, 0, 6, replier(handleListOffsets)},
		{3, 0, 12, replier(handleMetadata)},
		{8, 0, 9, replier(handleOffsetCommit)},
		{9, 0, 8, replier(handleOffsetFetch)},
		{10, 0, 4, replier(handleFindCoordinator)},
		{11, 0, 9, handler(handleJoinGroup)},
		{12, 0, 4, replier(handleHeartbeat)},
		{13, 0, 5, replier(handleLeaveGroup)},
		{14, 0, 5, handler(handleSyncGroup)},
		{15, 0, 5, replier(handleDescribeGroups)},
		{16, 0, 5, replier(handleListGroups)},
		{apiVersionsKey, 0, 4, replier(handleAPIVersions)},
		{19, 0, 7, replier(handleCreateTopics)},
		{20, 0, 6, replier(handleDeleteTopics)},
		{22, 0, 5, replier(handleInitProducerID)},
		{23, 0, 4, replier(handleOffsetForLeaderEpoch)},
		{32, 0, 4, replier(handleDescribeConfigs)},
		{33, 0, 2, replier(handleAlterConfigs)},
		{37, 0, 3, replier(handleCreatePartitions)},
		{42, 0, 3, replier(handleDeleteGroups)},
		{44, 0, 1, replier(handleIncrementalAlterConfigs)},
		{47, 0, 0, replier(handleOffsetDelete)},
		{60, 0, 1, replier(handleDescribeCluster)},
	}
	slices.SortFunc(apis, func(a, b api) int { return int(a.key) - int(b.key) })
}

func lookupAPI(key int16) *api {
	i, ok := slices.BinarySearchFunc(apis, key, func(a api, k int16) int { return int(a.key) - int(k) })
	if !ok {
		return nil
	}
	return &apis[i]
}

// replier adapts a handler that answers at once.
func replier[Req kmsg.Request, Resp kmsg.Response](f func(cc *call, req Req) (Resp, error)) func(*call, kmsg.Request) {
	return func(cc *call, req kmsg.Request) {
		resp, err := f(cc, req.(Req))
		cc.finish(resp, err)
	}
}

// handler adapts a handler that finishes its call itself.
func handler[Req kmsg.Request](f func(cc *call, req Req)) func(*call, kmsg.Request) {
	return func(cc *call, req kmsg.Request) { f(cc, req.(Req)) }
}

func apiKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for _, a := range apis {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
		keys = append(keys, k)
	}
	return keys
}

func handleAPIVersions(cc *call, req *kmsg.ApiVersionsRequest) (*kmsg.ApiVersionsResponse, error) {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiKeys()
	return resp, nil
}

// unsupportedAPIVersions is the v0 answer to an ApiVersions request of a
// version the server does not know.
func unsupportedAPIVersions() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = apiKeys()
	return resp
}
