// Package metrics holds the Prometheus collectors shared by every frontend,
// so that /metrics shows one request-latency histogram per API whatever
// protocol the request came in on.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Registry is wisp's Prometheus registry; httpapi serves it on /metrics.
var Registry = prometheus.NewRegistry()

var requestSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Namespace: "wisp",
	Name:      "request_duration_seconds",
	Help:      "Time to answer a request, by frontend (quic, kafka, http) and API.",
	Buckets:   []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
}, []string{"frontend", "api"})

var requestErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "wisp",
	Name:      "request_errors_total",
	Help:      "Requests answered with an error, by frontend and API.",
}, []string{"frontend", "api"})

func init() {
	Registry.MustRegister(requestSeconds, requestErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// ObserveRequest records one request's latency, and an error if err != nil.
//
//	start := time.Now()
//	err := handle(req)
//	metrics.ObserveRequest("kafka", "Produce", start, err)
func ObserveRequest(frontend, api string, start time.Time, err error) {
	requestSeconds.WithLabelValues(frontend, api).Observe(time.Since(start).Seconds())
	if err != nil {
		requestErrors.WithLabelValues(frontend, api).Inc()
	}
}
