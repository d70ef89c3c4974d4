package main

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// newHist is a latency histogram in nanoseconds, 1 ns to 2 minutes, three
// significant digits.
func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(2*time.Minute), 3)
}

// run is one repetition of a workload on one system.
type run struct {
	records int64         // records acknowledged (produce) or received (consume)
	bytes   int64         // value bytes of those records
	elapsed time.Duration // wall time, from the first send to the last answer
	cpu     time.Duration // CPU the server process used meanwhile
	// clientCPU is the CPU the load generator used meanwhile: the
	// client of the system under test (the other one idles).
	clientCPU time.Duration
	lost      int64 // e2e: records sent and never received
	unsent    int64 // e2e: records of the schedule the producer did not get to send
	hist      *hdrhistogram.Histogram
}

func (r run) rate() float64 { return float64(r.records) / r.elapsed.Seconds() }

func (r run) mbps() float64 { return float64(r.bytes) / r.elapsed.Seconds() / 1e6 }

// cores is the server's average CPU use during the run, in cores.
func (r run) cores() float64 { return r.cpu.Seconds() / r.elapsed.Seconds() }

func (r run) clientCores() float64 { return r.clientCPU.Seconds() / r.elapsed.Seconds() }

// pct is a percentile of the run's histogram, in microseconds.
func (r run) pct(q float64) float64 {
	if r.hist == nil || r.hist.TotalCount() == 0 {
		return math.NaN()
	}
	return float64(r.hist.ValueAtQuantile(q)) / 1e3
}

// stat is the median with min and max over the repetitions.
type stat struct{ med, min, max float64 }

func summarize(runs []run, f func(run) float64) stat {
	v := make([]float64, 0, len(runs))
	for _, r := range runs {
		if x := f(r); !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return stat{math.NaN(), math.NaN(), math.NaN()}
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return stat{med, v[0], v[len(v)-1]}
}

func (s stat) valid() bool { return !math.IsNaN(s.med) }

// human formats a count with k/M suffixes and three significant digits.
func human(x float64) string {
	switch {
	case math.IsNaN(x):
		return "–"
	case x >= 1e6:
		return sig3(x/1e6) + "M"
	case x >= 1e3:
		return sig3(x/1e3) + "k"
	}
	return sig3(x)
}

func sig3(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// micros formats microseconds as µs or ms.
func micros(us float64) string {
	switch {
	case math.IsNaN(us):
		return "–"
	case us >= 1e6:
		return sig3(us/1e6) + " s"
	case us >= 1000:
		return sig3(us/1000) + " ms"
	}
	return sig3(us) + " µs"
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "–"
	}
	r := a / b
	switch {
	case r >= 10:
		return fmt.Sprintf("%.0f×", r)
	case r >= 0.1:
		return fmt.Sprintf("%.2f×", r)
	}
	return fmt.Sprintf("%.2g×", r)
}
