package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/internal/metrics"
)

// busCollector exports the broker's own counters at scrape time, so that
// nothing is counted twice and every frontend's traffic is included.
type busCollector struct{ b *bus.Broker }

var (
	descRecordsIn = prometheus.NewDesc("wisp_topic_records_in_total",
		"Records appended to the topic since the broker started.", []string{"topic"}, nil)
	descBytesIn = prometheus.NewDesc("wisp_topic_bytes_in_total",
		"Batch bytes appended to the topic since the broker started.", []string{"topic"}, nil)
	descRecordsOut = prometheus.NewDesc("wisp_topic_records_out_total",
		"Records fetched from the topic since the broker started.", []string{"topic"}, nil)
	descBytesOut = prometheus.NewDesc("wisp_topic_bytes_out_total",
		"Batch bytes fetched from the topic since the broker started.", []string{"topic"}, nil)
	descSize = prometheus.NewDesc("wisp_topic_size_bytes",
		"Bytes of the topic's logs on disk.", []string{"topic"}, nil)
	descLag = prometheus.NewDesc("wisp_consumer_group_lag",
		"High watermark minus the group's committed offset.", []string{"group", "topic", "partition"}, nil)
)

func (c busCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecordsIn, descBytesIn, descRecordsOut, descBytesOut, descSize, descLag} {
		ch <- d
	}
}

func (c busCollector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range c.b.Topics() {
		var st bus.PartitionStats
		var size int64
		for _, p := range t.Partitions {
			st.RecordsIn += p.Stats.RecordsIn
			st.BytesIn += p.Stats.BytesIn
			st.RecordsOut += p.Stats.RecordsOut
			st.BytesOut += p.Stats.BytesOut
			size += p.SizeBytes
		}
		ch <- prometheus.MustNewConstMetric(descRecordsIn, prometheus.CounterValue, float64(st.RecordsIn), t.Name)
		ch <- prometheus.MustNewConstMetric(descBytesIn, prometheus.CounterValue, float64(st.BytesIn), t.Name)
		ch <- prometheus.MustNewConstMetric(descRecordsOut, prometheus.CounterValue, float64(st.RecordsOut), t.Name)
		ch <- prometheus.MustNewConstMetric(descBytesOut, prometheus.CounterValue, float64(st.BytesOut), t.Name)
		ch <- prometheus.MustNewConstMetric(descSize, prometheus.GaugeValue, float64(size), t.Name)
	}
	gs, err := groupLags(c.b)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descLag, err)
		return
	}
	for _, g := range gs {
		for _, p := range g.Partitions {
			ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(p.Lag),
				g.Group, p.Topic, strconv.Itoa(int(p.Partition)))
		}
	}
}

// statusWriter remembers the status for the latency metrics. Unwrap lets
// http.ResponseController reach Flush, deadlines and full duplex.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// errStatus stands for "answered with an error status" in request_errors_total.
var errStatus = errors.New("httpapi: error status")

// instrument records each request's latency under api (frontend "http").
// Streams (observe false) are not latencies and are left out.
func instrument(api string, observe bool, h http.HandlerFunc) http.Handler {
	if !observe {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		var err error
		if sw.status >= 400 {
			err = errStatus
		}
		metrics.ObserveRequest("http", api, start, err)
	})
}
