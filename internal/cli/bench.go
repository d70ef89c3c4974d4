package cli

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/internal/loadgen"
)

func init() { extraCommands = append(extraCommands, newBenchCmd) }

// Defaults of wisp bench.
const (
	defaultBenchTopic = "wisp-bench"
	defaultBenchCount = 100_000          // produce, when neither -n nor -d is given
	defaultE2EDur     = 10 * time.Second // e2e, when neither -n nor -d is given
	defaultE2ERate    = 1000
)

func newBenchCmd() *cobra.Command {
	cmd := groupCmd("bench", "Measure throughput and latency of a running node or cluster",
		newBenchSubCmd("produce", "Produce records as fast as possible (or at --rate) and measure throughput and acknowledgement latency",
			`  wisp bench produce                           # 100,000 records of 100 B to topic wisp-bench
  wisp bench produce -s 1024 -d 30s -P 4 -p 4  # 1 KB records for 30 s from 4 producers, 4 partitions
  wisp bench produce --acks leader -z zstd --linger 20ms --batch-bytes 4194304
  wisp bench produce -n 1000000 --json > produce.json`),
		newBenchSubCmd("consume", "Read a topic and measure consumer throughput",
			`  wisp bench consume                  # read what topic wisp-bench holds, from the start
  wisp bench consume -n 1000000 -C 4  # 4 consumers splitting the partitions
  wisp bench consume -d 30s -g bench  # as members of group "bench", committing`),
		newBenchSubCmd("e2e", "Produce at a fixed rate and measure the latency from producer to consumer",
			`  wisp bench e2e                       # 1,000 records/s for 10 s
  wisp bench e2e --rate 50000 -d 30s   # p50/p90/p99/p99.9 at 50k records/s
  wisp bench e2e --rate 20000 --acks leader -P 2 -C 2 -p 2 --csv`),
		newBenchSubCmd("fn", "Produce into a function's input at a fixed rate and measure what comes out of its output",
			`  wisp fn deploy keep --module bin/wasm/filter.wasm --input in --output out --env MATCH=wisp-bench
  wisp bench fn keep                         # 1,000 records/s for 10 s through function keep
  wisp bench fn keep --rate 20000 -d 30s --json
  wisp bench fn keep --value '{"type":"click"}' --output clicks`),
	)
	cmd.Long = `Measure throughput and latency of a running node or cluster, like
nats bench or kafka-producer-perf-test.

  produce  producers send records as fast as they are taken (or at --rate);
           latency is from each Produce call to its acknowledgement
  consume  consumers read a topic from its start (the records it holds, -n
           records, or for -d)
  e2e      producers send at a fixed --rate while consumers on connections
           of their own read the records back; latency is from just before
           the Produce call to the consumer's receipt
  fn       e2e through a deployed function: records go to its input, the
           consumers read its output (values are JSON, {"type":"wisp-bench",
           "pad":"..."} unless --value; the send time travels in the header
           wisp-bench, which the SDK's Filter, Map and Route keep)

Each producer and consumer is a client with a connection of its own. The
topic (default wisp-bench) is created with -p partitions, -r replicas and
-c configs (e.g. -c flush=os; the default flush=always fsyncs each batch)
when it does not exist. Latency percentiles come from an HDR histogram (3
significant digits). Results go to stdout as a table, --json or --csv;
progress goes to stderr: a bar on a terminal, a line every
--progress-interval otherwise.`
	return cmd
}

// newBenchSubCmd builds one bench subcommand with the flags its mode uses.
func newBenchSubCmd(mode, short, example string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     mode,
		Short:   short,
		Example: example,
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return runBench(cmd, mode, args) },
	}
	f := cmd.Flags()
	produces, consumes := mode != "consume", mode != "produce"
	latency := mode == "e2e" || mode == "fn"
	if mode == "fn" {
		cmd.Use, cmd.Args = "fn FUNCTION", exactArgs("FUNCTION")
		f.StringP("topic", "t", "", "topic to produce to (default: the function's input)")
		f.String("output", "", "topic to read (default: the function's first output)")
		f.String("value", "", `value of every record (default: {"type":"wisp-bench","pad":"..."} of --size bytes)`)
	} else {
		f.StringP("topic", "t", defaultBenchTopic, "topic to use; created when missing")
	}
	f.Int32P("partitions", "p", 1, "partitions of the topic when it is created")
	f.Int16P("replicas", "r", 0, "replication factor of the topic when it is created (default: the cluster's)")
	f.StringArrayP("config", "c", nil, "topic config key=value when it is created, e.g. -c flush=os; repeatable")
	f.IntP("size", "s", loadgen.DefaultRecordSize, "record value size in bytes")
	f.Int64P("count", "n", 0, countHelp(mode))
	f.DurationP("duration", "d", 0, "run for this long (with -n: whichever comes first)")
	if produces {
		f.IntP("producers", "P", 1, "producers, each a client with its own connection")
		f.Float64("rate", 0, rateHelp(mode))
		f.Int("batch-bytes", client.DefaultBatchMaxBytes, "largest produced batch in bytes, before compression")
		f.Int64("buffer-bytes", 0, "bytes a producer holds unacknowledged before Produce blocks (default 256 MiB, or 4 batches per partition if more); "+
			"smaller keeps a -d run near its length and the latency to the pipeline rather than the buffer")
		linger := client.DefaultLinger
		if latency {
			linger = 0
		}
		f.Duration("linger", linger, "how long a batch waits for more records before it is sent")
		f.String("acks", "all", "acknowledgement: none, leader or all")
		f.StringP("compression", "z", "none", "compression: none, gzip, snappy, lz4 or zstd")
	}
	if consumes {
		f.IntP("consumers", "C", 1, "consumers, each a client with its own connection; without a group they split the partitions")
	}
	if mode == "consume" {
		f.StringP("group", "g", "", "join this consumer group (and commit) instead of splitting the partitions")
		f.StringP("offset", "o", "start", "where to start: start or end")
	}
	if latency {
		f.Duration("drain", loadgen.DefaultDrainTimeout, "after the last record is acknowledged, how long to wait for the rest to arrive")
	}
	f.Bool("json", false, "print the result as JSON")
	f.Bool("csv", false, "print the result as CSV, one row per client and a total")
	f.Bool("no-progress", false, "print no progress on stderr")
	f.Duration("progress-interval", time.Second, "interval of the progress lines when stderr is not a terminal")
	return cmd
}

func countHelp(mode string) string {
	switch mode {
	case "produce":
		return fmt.Sprintf("records to produce, split over the producers (default %d when -d is not given)", defaultBenchCount)
	case "consume":
		return "records to read (default: those the topic holds at the start, when -d is not given)"
	}
	return "records to produce (default: run for 10s when -d is not given)"
}

func rateHelp(mode string) string {
	if mode == "produce" {
		return "records per second over all producers (default: as fast as possible)"
	}
	return fmt.Sprintf("records per second over all producers (default %d)", defaultE2ERate)
}

// benchOutput is how the result is printed.
type benchOutput int8

const (
	benchText benchOutput = iota
	benchJSON
	benchCSV
)

// benchSettings are the flags a run used, printed with its result.
type benchSettings struct {
	Partitions   int32             `json:"partitions"`
	Replicas     int16             `json:"replicas,omitempty"`
	TopicConfigs map[string]string `json:"topic_configs,omitempty"`
	Producers    int               `json:"producers,omitempty"`
	Consumers    int               `json:"consumers,omitempty"`
	Count        int64             `json:"count,omitempty"`
	DurationSec  float64           `json:"duration_s,omitempty"`
	Rate         float64           `json:"rate,omitempty"`
	Acks         string            `json:"acks,omitempty"`
	LingerMS     float64           `json:"linger_ms"`
	BatchBytes   int               `json:"batch_bytes,omitempty"`
	BufferBytes  int64             `json:"buffer_bytes,omitempty"`
	Compression  string            `json:"compression,omitempty"`
	Group        string            `json:"group,omitempty"`
	Offset       string            `json:"offset,omitempty"`
}

// parseBench reads the flags of a bench subcommand into a loadgen config.
func parseBench(cmd *cobra.Command, mode string, o clientOpts) (loadgen.Config, benchSettings, benchOutput, error) {
	f := cmd.Flags()
	var cfg loadgen.Config
	var st benchSettings
	cfg.Topic, _ = f.GetString("topic")
	if mode == "fn" {
		cfg.OutputTopic, _ = f.GetString("output")
		if v, _ := f.GetString("value"); v != "" {
			cfg.Value = []byte(v)
		}
	}
	cfg.Partitions, _ = f.GetInt32("partitions")
	cfg.Replicas, _ = f.GetInt16("replicas")
	cfg.RecordSize, _ = f.GetInt("size")
	cfg.Count, _ = f.GetInt64("count")
	cfg.Duration, _ = f.GetDuration("duration")
	asJSON, _ := f.GetBool("json")
	asCSV, _ := f.GetBool("csv")
	out := benchText
	switch {
	case asJSON && asCSV:
		return cfg, st, out, usageError(cmd, "--json and --csv are exclusive")
	case asJSON || o.json():
		out = benchJSON
	case asCSV:
		out = benchCSV
	}
	switch {
	case cfg.Topic == "" && mode != "fn":
		return cfg, st, out, usageError(cmd, "--topic is empty")
	case cfg.Partitions < 1:
		return cfg, st, out, usageError(cmd, "--partitions must be at least 1")
	case cfg.Replicas < 0:
		return cfg, st, out, usageError(cmd, "--replicas must not be negative")
	case cfg.RecordSize < 0:
		return cfg, st, out, usageError(cmd, "--size must not be negative")
	case mode == "e2e" && cfg.RecordSize < loadgen.MinE2ERecordSize:
		return cfg, st, out, usageError(cmd, "--size %d: e2e records carry a 16-byte stamp, so at least %d", cfg.RecordSize, loadgen.MinE2ERecordSize)
	case cfg.Count < 0:
		return cfg, st, out, usageError(cmd, "--count must not be negative")
	case cfg.Duration < 0:
		return cfg, st, out, usageError(cmd, "--duration must not be negative")
	}
	if cfg.Count == 0 && cfg.Duration == 0 {
		switch mode {
		case "produce":
			cfg.Count = defaultBenchCount
		case "e2e", "fn":
			cfg.Duration = defaultE2EDur
		}
	}
	rawConfigs, _ := f.GetStringArray("config")
	kvs, err := parseKVs(cmd, "config", rawConfigs)
	if err != nil {
		return cfg, st, out, err
	}
	if len(kvs) > 0 {
		cfg.TopicConfigs = map[string]string{}
		for _, kv := range kvs {
			cfg.TopicConfigs[kv[0]] = kv[1]
		}
	}
	st.Partitions, st.Replicas, st.TopicConfigs = cfg.Partitions, cfg.Replicas, cfg.TopicConfigs
	st.Count, st.DurationSec = cfg.Count, cfg.Duration.Seconds()
	if f.Lookup("producers") != nil {
		cfg.Producers, _ = f.GetInt("producers")
		cfg.Rate, _ = f.GetFloat64("rate")
		batchBytes, _ := f.GetInt("batch-bytes")
		bufBytes, _ := f.GetInt64("buffer-bytes")
		linger, _ := f.GetDuration("linger")
		acksName, _ := f.GetString("acks")
		codecName, _ := f.GetString("compression")
		acks, ok := parseAcks(acksName)
		if !ok {
			return cfg, st, out, usageError(cmd, "--acks %q: want none, leader or all", acksName)
		}
		codec, err := client.ParseCodec(strings.ToLower(codecName))
		if err != nil {
			return cfg, st, out, usageError(cmd, "--compression %q: want none, gzip, snappy, lz4 or zstd", codecName)
		}
		switch {
		case cfg.Producers < 1:
			return cfg, st, out, usageError(cmd, "--producers must be at least 1")
		case cfg.Rate < 0:
			return cfg, st, out, usageError(cmd, "--rate must not be negative")
		case linger < 0:
			return cfg, st, out, usageError(cmd, "--linger must not be negative")
		case batchBytes < 1024:
			return cfg, st, out, usageError(cmd, "--batch-bytes %d: want at least 1024", batchBytes)
		case bufBytes < 0 || (bufBytes > 0 && bufBytes < int64(batchBytes)):
			return cfg, st, out, usageError(cmd, "--buffer-bytes %d: want at least --batch-bytes (%d)", bufBytes, batchBytes)
		}
		if (mode == "e2e" || mode == "fn") && cfg.Rate == 0 {
			cfg.Rate = defaultE2ERate
		}
		if bufBytes == 0 {
			// The buffer holds at least a few batches of each partition.
			bufBytes = max(int64(client.DefaultMaxBufferedSize), 4*int64(batchBytes)*int64(cfg.Partitions))
		}
		cfg.ProducerOpts = []client.Opt{client.Linger(linger), client.BatchMaxBytes(batchBytes),
			client.RequiredAcks(acks), client.Compression(codec), client.MaxBufferedBytes(bufBytes)}
		if batchBytes > client.DefaultMaxFrameBytes-1024 {
			cfg.ProducerOpts = append(cfg.ProducerOpts, client.MaxFrameBytes(batchBytes+1024))
		}
		st.Producers, st.Rate, st.Acks = cfg.Producers, cfg.Rate, strings.ToLower(acksName)
		st.LingerMS, st.BatchBytes, st.Compression = float64(linger)/float64(time.Millisecond), batchBytes, codec.String()
		st.BufferBytes = bufBytes
	}
	if f.Lookup("consumers") != nil {
		cfg.Consumers, _ = f.GetInt("consumers")
		if cfg.Consumers < 1 {
			return cfg, st, out, usageError(cmd, "--consumers must be at least 1")
		}
		st.Consumers = cfg.Consumers
	}
	if mode == "consume" {
		cfg.Group, _ = f.GetString("group")
		off, _ := f.GetString("offset")
		switch strings.ToLower(off) {
		case "start", "beginning", "earliest", "oldest":
		case "end", "latest", "newest":
			cfg.FromEnd = true
			if cfg.Count == 0 && cfg.Duration == 0 {
				return cfg, st, out, usageError(cmd, "-o end reads only new records: give -n or -d")
			}
		default:
			return cfg, st, out, usageError(cmd, "--offset %q: want start or end", off)
		}
		st.Group, st.Offset = cfg.Group, strings.ToLower(off)
	}
	if mode == "e2e" || mode == "fn" {
		cfg.DrainTimeout, _ = f.GetDuration("drain")
		if cfg.DrainTimeout <= 0 {
			return cfg, st, out, usageError(cmd, "--drain must be positive")
		}
	}
	return cfg, st, out, nil
}

func runBench(cmd *cobra.Command, mode string, args []string) error {
	o, err := clientOptsFrom(cmd)
	if err != nil {
		return err
	}
	cfg, st, out, err := parseBench(cmd, mode, o)
	if err != nil {
		return err
	}
	if mode == "fn" {
		cfg.Function = args[0]
	}
	cfg.ClientOpts = benchClientOpts(o)
	noProgress, _ := cmd.Flags().GetBool("no-progress")
	interval, _ := cmd.Flags().GetDuration("progress-interval")
	if interval <= 0 {
		return usageError(cmd, "--progress-interval must be positive")
	}
	var prog *benchProgress
	if !noProgress {
		prog = newBenchProgress(cmd.ErrOrStderr(), mode, cfg, interval)
		cfg.Progress, cfg.ProgressInterval = prog.update, prog.interval
	}

	ctx := cmd.Context()
	var res loadgen.Result
	switch mode {
	case "produce":
		res, err = loadgen.Produce(ctx, cfg)
	case "consume":
		res, err = loadgen.Consume(ctx, cfg)
	case "e2e":
		res, err = loadgen.E2E(ctx, cfg)
	case "fn":
		res, err = loadgen.Fn(ctx, cfg)
	}
	prog.finish()
	if err != nil && !(ctx.Err() != nil && res.Mode != "") {
		if mode == "fn" && errors.Is(err, kerr.ResourceNotFound) {
			return fmt.Errorf("function %q does not exist", cfg.Function)
		}
		return o.explain(err, cfg.Topic, cfg.Group)
	}
	// Interrupted with Ctrl-C: print what was measured so far.
	w := cmd.OutOrStdout()
	switch out {
	case benchJSON:
		err = writeJSON(w, benchToJSON(res, st))
	case benchCSV:
		err = writeBenchCSV(w, res)
	default:
		err = writeBenchText(w, res, st)
	}
	if err != nil {
		return err
	}
	if res.Errors > 0 {
		return fmt.Errorf("%d records failed; the first: %v", res.Errors, o.explain(res.FirstError, cfg.Topic, ""))
	}
	return nil
}

// benchClientOpts are the client options of the shared flags (the ones
// connect uses), for loadgen's own clients.
func benchClientOpts(o clientOpts) []client.Opt {
	opts := []client.Opt{
		client.Servers(o.servers...),
		client.ClientID("wisp-bench"),
		client.DialTimeout(o.timeout),
		client.RequestTimeout(o.timeout),
	}
	if kh := client.DefaultKnownHostsPath(); kh != "" {
		opts = append(opts, client.KnownHosts(kh))
	}
	if o.insecure {
		opts = append(opts, client.InsecureSkipVerify())
	}
	if o.tlsCA != "" {
		opts = append(opts, client.TLSCA(o.tlsCA))
	}
	if o.tlsCert != "" {
		opts = append(opts, client.TLSClientCert(o.tlsCert, o.tlsKey))
	}
	return opts
}

// benchProgress shows a run's progress on stderr: a bar on a terminal,
// plain lines every interval otherwise. update is called from loadgen's
// progress goroutine only; finish after the run.
type benchProgress struct {
	w        io.Writer
	mode     string
	total    int64         // records, or 0: the bar counts time
	dur      time.Duration // when total is 0
	interval time.Duration
	bar      *progressbar.ProgressBar
	last     int64
	lastAt   time.Duration
}

func newBenchProgress(w io.Writer, mode string, cfg loadgen.Config, interval time.Duration) *benchProgress {
	p := &benchProgress{w: w, mode: mode, total: cfg.Count, dur: cfg.Duration, interval: interval}
	if f, ok := w.(*os.File); ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		p.interval = 200 * time.Millisecond
		opts := []progressbar.Option{progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(mode),
			progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100 * time.Millisecond),
			progressbar.OptionShowElapsedTimeOnFinish(), progressbar.OptionClearOnFinish()}
		switch {
		case p.total > 0:
			p.bar = progressbar.NewOptions64(p.total, append(opts, progressbar.OptionShowCount(),
				progressbar.OptionShowIts(), progressbar.OptionSetItsString("rec"))...)
		case p.dur > 0:
			p.bar = progressbar.NewOptions64(p.dur.Milliseconds(), opts...)
		default: // consume of what the topic holds: a spinner with a count
			p.bar = progressbar.NewOptions64(-1, append(opts, progressbar.OptionShowCount(),
				progressbar.OptionShowIts(), progressbar.OptionSetItsString("rec"))...)
		}
	}
	return p
}

func (p *benchProgress) update(s loadgen.Progress) {
	if p.bar != nil {
		if p.total > 0 || p.dur == 0 {
			_ = p.bar.Set64(min(s.Done, max(p.total, s.Done)))
		} else {
			_ = p.bar.Set64(min(s.Elapsed.Milliseconds(), p.dur.Milliseconds()))
			p.bar.Describe(fmt.Sprintf("%s %d records", p.mode, s.Done))
		}
		return
	}
	// The rate of the last interval; the final line has the whole run's.
	rate, last := 0.0, "last interval"
	if s.Final {
		p.last, p.lastAt, last = 0, 0, "done"
	}
	if d := s.Elapsed - p.lastAt; d > 0 {
		rate = float64(s.Done-p.last) / d.Seconds()
	}
	p.last, p.lastAt = s.Done, s.Elapsed
	of := ""
	if s.Total > 0 {
		of = fmt.Sprintf("/%d", s.Total)
	}
	fmt.Fprintf(p.w, "%s  %s: %d%s records, %s records/s (%s), %s\n", time.Now().Format("15:04:05"), p.mode,
		s.Done, of, humanCount(rate), last, s.Elapsed.Round(time.Millisecond))
}

func (p *benchProgress) finish() {
	if p != nil && p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
	}
}

// humanCount formats a rate with k/M suffixes and three significant digits.
func humanCount(x float64) string {
	switch {
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
		return strconv.FormatFloat(x, 'f', 0, 64)
	case x >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

// humanLatency formats a latency as µs, ms or s with three significant
// digits.
func humanLatency(d time.Duration) string {
	us := float64(d) / 1e3
	switch {
	case us >= 1e6:
		return sig3(us/1e6) + " s"
	case us >= 1e3:
		return sig3(us/1e3) + " ms"
	}
	return sig3(us) + " µs"
}

// latencyOf says what a mode's latency measures.
func latencyOf(mode string) string {
	switch mode {
	case "produce":
		return "produce call to acknowledgement"
	case "e2e", "fn":
		return "produce call to consumer receipt"
	}
	return ""
}

func writeBenchText(w io.Writer, res loadgen.Result, st benchSettings) error {
	var head []string
	if res.Mode == "fn" {
		head = append(head, fmt.Sprintf("fn: function %s, topic %s → %s, %d B records", res.Function, res.Topic, res.OutputTopic, res.RecordSize))
	} else {
		head = append(head, fmt.Sprintf("%s: topic %s, %d B records", res.Mode, res.Topic, res.RecordSize))
	}
	if st.Producers > 0 {
		rate := "as fast as possible"
		if st.Rate > 0 {
			rate = humanCount(st.Rate) + " records/s"
		}
		head = append(head, fmt.Sprintf("%s, %s, acks %s, linger %v, batch %s, compression %s", plural(st.Producers, "producer"), rate,
			st.Acks, time.Duration(st.LingerMS*float64(time.Millisecond)), humanBytes(int64(st.BatchBytes)), st.Compression))
	}
	if st.Consumers > 0 {
		how := "splitting the partitions"
		if st.Group != "" {
			how = "in group " + st.Group
		}
		head = append(head, fmt.Sprintf("%s %s", plural(st.Consumers, "consumer"), how))
	}
	fmt.Fprintf(w, "%s\n\n", strings.Join(head, "; "))
	tw := newTable(w)
	withLat := res.Latency != nil
	fmt.Fprint(tw, "CLIENT\tRECORDS\tMB\tELAPSED\tRECORDS/S\tMB/S")
	if withLat {
		fmt.Fprint(tw, "\tP50\tP90\tP99\tP99.9\tMAX")
	}
	fmt.Fprintln(tw)
	row := func(name string, recs, nb int64, el time.Duration, rps, mbps float64, l *loadgen.Latency) {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%v\t%s\t%.2f", name, recs, float64(nb)/1e6, el.Round(time.Millisecond), humanCount(rps), mbps)
		if withLat {
			if l == nil {
				fmt.Fprint(tw, "\t–\t–\t–\t–\t–")
			} else {
				fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%s", humanLatency(l.P50), humanLatency(l.P90), humanLatency(l.P99),
					humanLatency(l.P999), humanLatency(l.Max))
			}
		}
		fmt.Fprintln(tw)
	}
	for _, c := range res.Clients {
		row(fmt.Sprintf("%s %d", c.Role, c.ID), c.Records, c.Bytes, c.Elapsed, c.RecordsPerSec(), c.MBPerSec(), c.Latency)
	}
	row("total", res.Records, res.Bytes, res.Elapsed, res.RecordsPerSec(), res.MBPerSec(), res.Latency)
	if err := tw.Flush(); err != nil {
		return err
	}
	if withLat {
		fmt.Fprintf(w, "\nlatency: %s (HDR histogram, 3 significant digits)", latencyOf(res.Mode))
		if res.Mode != "produce" {
			fmt.Fprint(w, "; producer rows: produce call to acknowledgement")
		}
		fmt.Fprintln(w)
	}
	switch {
	case res.Mode == "e2e" || res.Mode == "fn" && res.Function == "":
		fmt.Fprintf(w, "sent %d, received %d, not received %d\n", res.Sent, res.Records, res.Lost)
	case res.Mode == "fn":
		fmt.Fprintf(w, "sent %d to %s; the function wrote %d to %s; received %d, not received %d\n",
			res.Sent, res.Topic, res.Written, res.OutputTopic, res.Records, res.Lost)
	}
	if res.Errors > 0 {
		fmt.Fprintf(w, "failed %d\n", res.Errors)
	}
	return nil
}

// benchJSONResult is the --json output of wisp bench.
type benchJSONResult struct {
	Mode          string            `json:"mode"`
	Topic         string            `json:"topic"`
	Function      string            `json:"function,omitempty"`
	OutputTopic   string            `json:"output_topic,omitempty"`
	Written       *int64            `json:"written,omitempty"`
	RecordSize    int               `json:"record_size"`
	Records       int64             `json:"records"`
	Bytes         int64             `json:"bytes"`
	Sent          *int64            `json:"sent,omitempty"`
	Lost          *int64            `json:"lost,omitempty"`
	Errors        int64             `json:"errors"`
	FirstError    string            `json:"first_error,omitempty"`
	ElapsedSec    float64           `json:"elapsed_s"`
	RecordsPerSec float64           `json:"records_per_sec"`
	MBPerSec      float64           `json:"mb_per_sec"`
	LatencyOf     string            `json:"latency_of,omitempty"`
	Latency       *benchJSONLatency `json:"latency_us,omitempty"`
	Settings      benchSettings     `json:"settings"`
	Clients       []benchJSONClient `json:"clients"`
}

type benchJSONClient struct {
	Role          string            `json:"role"`
	ID            int               `json:"id"`
	Records       int64             `json:"records"`
	Bytes         int64             `json:"bytes"`
	ElapsedSec    float64           `json:"elapsed_s"`
	RecordsPerSec float64           `json:"records_per_sec"`
	MBPerSec      float64           `json:"mb_per_sec"`
	Latency       *benchJSONLatency `json:"latency_us,omitempty"`
}

// benchJSONLatency is a latency summary in microseconds.
type benchJSONLatency struct {
	Count int64   `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

func jsonLatency(l *loadgen.Latency) *benchJSONLatency {
	if l == nil {
		return nil
	}
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	return &benchJSONLatency{Count: l.Count, Min: us(l.Min), Mean: us(l.Mean), P50: us(l.P50), P90: us(l.P90),
		P99: us(l.P99), P999: us(l.P999), Max: us(l.Max)}
}

func benchToJSON(res loadgen.Result, st benchSettings) benchJSONResult {
	j := benchJSONResult{Mode: res.Mode, Topic: res.Topic, RecordSize: res.RecordSize, Records: res.Records,
		Bytes: res.Bytes, Errors: res.Errors, ElapsedSec: res.Elapsed.Seconds(), RecordsPerSec: res.RecordsPerSec(),
		MBPerSec: res.MBPerSec(), Latency: jsonLatency(res.Latency), Settings: st, Clients: []benchJSONClient{}}
	if res.Latency != nil {
		j.LatencyOf = latencyOf(res.Mode)
	}
	if res.FirstError != nil {
		j.FirstError = res.FirstError.Error()
	}
	if res.Mode == "e2e" || res.Mode == "fn" {
		j.Sent, j.Lost = &res.Sent, &res.Lost
	}
	if res.Mode == "fn" {
		j.Function, j.OutputTopic = res.Function, res.OutputTopic
		if res.Function != "" {
			j.Written = &res.Written
		}
	}
	for _, c := range res.Clients {
		j.Clients = append(j.Clients, benchJSONClient{Role: c.Role, ID: c.ID, Records: c.Records, Bytes: c.Bytes,
			ElapsedSec: c.Elapsed.Seconds(), RecordsPerSec: c.RecordsPerSec(), MBPerSec: c.MBPerSec(), Latency: jsonLatency(c.Latency)})
	}
	return j
}

// writeBenchCSV prints one row per client and a total row; latencies in
// microseconds, empty where not measured.
func writeBenchCSV(w io.Writer, res loadgen.Result) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"mode", "topic", "client", "records", "bytes", "elapsed_s", "records_per_sec", "mb_per_sec",
		"p50_us", "p90_us", "p99_us", "p99_9_us", "max_us", "sent", "lost", "errors"})
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	lat := func(l *loadgen.Latency) []string {
		if l == nil {
			return []string{"", "", "", "", ""}
		}
		us := func(d time.Duration) string { return f(float64(d) / 1e3) }
		return []string{us(l.P50), us(l.P90), us(l.P99), us(l.P999), us(l.Max)}
	}
	for _, c := range res.Clients {
		row := []string{res.Mode, res.Topic, fmt.Sprintf("%s %d", c.Role, c.ID), strconv.FormatInt(c.Records, 10),
			strconv.FormatInt(c.Bytes, 10), f(c.Elapsed.Seconds()), f(c.RecordsPerSec()), f(c.MBPerSec())}
		_ = cw.Write(append(append(row, lat(c.Latency)...), "", "", ""))
	}
	sent, lost := "", ""
	if res.Mode == "e2e" || res.Mode == "fn" {
		sent, lost = strconv.FormatInt(res.Sent, 10), strconv.FormatInt(res.Lost, 10)
	}
	row := []string{res.Mode, res.Topic, "total", strconv.FormatInt(res.Records, 10), strconv.FormatInt(res.Bytes, 10),
		f(res.Elapsed.Seconds()), f(res.RecordsPerSec()), f(res.MBPerSec())}
	_ = cw.Write(append(append(row, lat(res.Latency)...), sent, lost, strconv.FormatInt(res.Errors, 10)))
	cw.Flush()
	return cw.Error()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
