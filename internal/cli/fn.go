package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/client"
	"github.com/wispbus/wisp/functions"
)

func init() { extraCommands = append(extraCommands, newFnCmd) }

// deployTimeout bounds a deploy request: the node compiles the module
// (about a second for a Go module, several on a busy machine) before it
// answers.
const deployTimeout = 2 * time.Minute

func newFnCmd() *cobra.Command {
	cmd := groupCmd("fn", "Deploy, inspect and operate WASM functions",
		newFnDeployCmd(), newFnListCmd(), newFnDescribeCmd(), newFnLogsCmd(),
		newFnStateCmd("pause", "Pause a function: its workers stop; resume continues from the committed offsets"),
		newFnStateCmd("resume", "Resume a paused or failed function from its committed offsets"),
		newFnStateCmd("delete", "Delete a function and its committed offsets (its outputs stay)"),
		newFnTestCmd())
	cmd.Aliases = []string{"function", "functions"}
	return cmd
}

// fnExplain is clientOpts.explain for function commands: an unknown
// function by name, and the node's own words for a rejected deploy.
func fnExplain(o clientOpts, err error, name string) error {
	var be *client.BrokerError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.ResourceNotFound):
		return fmt.Errorf("function %q does not exist", name)
	case errors.As(err, &be) && (errors.Is(err, kerr.InvalidRequest) || errors.Is(err, kerr.InvalidConfig)) && be.Message != "":
		return errors.New(oneLine(be.Message))
	}
	return o.explain(err, "", "")
}

// fnClientOpts reads the shared client flags of a command that has its
// own --timeout (deploy and test: the batch deadline), which shadows the
// shared one: the client then uses the default request timeout.
func fnClientOpts(cmd *cobra.Command) (clientOpts, error) {
	f := cmd.Flags().Lookup("timeout")
	saved := f.Value.String()
	_ = f.Value.Set(defaultClientTimeout.String())
	o, err := clientOptsFrom(cmd)
	_ = f.Value.Set(saved)
	return o, err
}

// parseMemory reads --memory: a size in MiB ("64MiB", "64Mi", "64M",
// "64MB", "1GiB", or a bare number of MiB).
func parseMemory(s string) (int, error) {
	t := strings.TrimSpace(s)
	unit := 1
	for _, u := range []struct {
		suffix string
		mul    int
	}{{"GiB", 1024}, {"GB", 1024}, {"Gi", 1024}, {"G", 1024}, {"MiB", 1}, {"MB", 1}, {"Mi", 1}, {"M", 1}} {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, unit = strings.TrimSpace(rest), u.mul
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 || n*unit > 4096 {
		return 0, fmt.Errorf("--memory %q: want a size from 1MiB to 4GiB, such as 64MiB", s)
	}
	return n * unit, nil
}

func newFnDeployCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy NAME",
		Short: "Deploy a WASM module as a function (a new version if NAME exists)",
		Long: `Deploy a WASM module as a function that reads --input and writes to the
--output topics (the first is the default output). The node compiles and
runs the module once before anything changes: a module that does not
compile or lacks the ABI is rejected, and a running version keeps running.

Deploying an existing NAME makes a new version that continues from the
committed input offsets, or from --from when given. --from on a new
function: start (every record), end (new records only; the default), an
offset N, or @TIME (RFC 3339 or ms since the epoch).

--timeout is the deadline of one batch in the module here, not the
request timeout.`,
		Example: `  make wasm
  wisp fn deploy only-eu --module bin/wasm/filter.wasm --input events --output eu-events \
      --env FIELD=user.country --env MATCH=EU --from start
  wisp fn deploy mask --module bin/wasm/transform.wasm --input signups --output signups-clean \
      --dlq signups-dlq --memory 32MiB --timeout 2s`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := fnClientOpts(cmd)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			spec := client.FunctionSpec{Name: args[0]}
			path, _ := f.GetString("module")
			spec.Input, _ = f.GetString("input")
			spec.Outputs, _ = f.GetStringArray("output")
			spec.DLQ, _ = f.GetString("dlq")
			spec.Start, _ = f.GetString("from")
			spec.Timeout, _ = f.GetDuration("timeout")
			envs, _ := f.GetStringArray("env")
			switch {
			case path == "":
				return usageError(cmd, "missing --module FILE.wasm")
			case spec.Input == "":
				return usageError(cmd, "missing --input TOPIC")
			case len(spec.Outputs) == 0:
				return usageError(cmd, "missing --output TOPIC")
			case spec.Timeout < 0:
				return usageError(cmd, "--timeout %v: want a positive duration", spec.Timeout)
			}
			if mem, _ := f.GetString("memory"); mem != "" {
				if spec.MemoryMB, err = parseMemory(mem); err != nil {
					return usageError(cmd, "%v", err)
				}
			}
			kvs, err := parseKVs(cmd, "env", envs)
			if err != nil {
				return err
			}
			if len(kvs) > 0 {
				spec.Env = map[string]string{}
				for _, kv := range kvs {
					spec.Env[kv[0]] = kv[1]
				}
			}
			module, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("--module: %w", err)
			}
			c, err := o.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), deployTimeout)
			defer cancel()
			info, err := c.DeployFunction(ctx, spec, module)
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					return fmt.Errorf("deploy %q: no answer within %v", spec.Name, deployTimeout)
				}
				if errors.Is(err, kerr.InvalidRequest) || errors.Is(err, kerr.InvalidConfig) {
					return fmt.Errorf("deploy %q rejected: %w", spec.Name, fnExplain(o, err, spec.Name))
				}
				return fnExplain(o, err, spec.Name)
			}
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), info)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "deployed function %q version %d (module %s): %s -> %s\n",
				info.Name, info.Version, shortHash(info.Module), info.Input, strings.Join(info.Outputs, ","))
			return err
		},
	}
	f := cmd.Flags()
	f.String("module", "", "the WASM module (.wasm) to deploy")
	f.String("input", "", "the topic the function reads")
	f.StringArray("output", nil, "a topic the function may write to; repeatable, the first is the default")
	f.StringArray("env", nil, "environment variable K=V of the module; repeatable")
	f.String("dlq", "", "dead-letter topic for records the function fails on (none: a failing record stops the function)")
	f.String("from", "", "where to start reading: start, end, OFFSET or @TIME (default: end for a new function, the committed offsets for a redeploy)")
	f.String("memory", "", "memory limit of each instance, e.g. 64MiB (default 64MiB)")
	f.Duration("timeout", 0, "deadline of one batch in the module, e.g. 2s (default 5s)")
	return cmd
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func newFnListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List functions: input, outputs, state, lag, records in and out, errors",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := clientOptsFrom(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := o.adminCtx(cmd.Context())
			defer cancel()
			c, err := o.connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			fns, err := c.ListFunctions(ctx)
			if err != nil {
				return fnExplain(o, err, "")
			}
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), fns)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tINPUT\tOUTPUTS\tSTATE\tLAG\tIN\tOUT\tERRORS\tVERSION\tLAST-ERROR")
			for _, f := range fns {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", f.Name, f.Input, strings.Join(f.Outputs, ","),
					f.State, f.Lag, f.RecordsIn, f.RecordsOut, f.Errors, f.Version, dash(clip(oneLine(f.Error), 60)))
			}
			return tw.Flush()
		},
	}
}

// clip shortens s to n runes with an ellipsis.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func newFnDescribeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Describe a function: manifest, state, and each input partition's worker, offsets and lag",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := clientOptsFrom(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := o.adminCtx(cmd.Context())
			defer cancel()
			c, err := o.connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			d, err := c.DescribeFunction(ctx, args[0])
			if err != nil {
				return fnExplain(o, err, args[0])
			}
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), d)
			}
			return printFunction(cmd.OutOrStdout(), d)
		},
	}
}

func printFunction(w io.Writer, d client.FunctionDetail) error {
	tw := newTable(w)
	kv := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	kv("NAME", "%s", d.Name)
	kv("STATE", "%s", d.State)
	if d.Error != "" {
		kv("ERROR", "%s", oneLine(d.Error))
	}
	kv("VERSION", "%d (module %s, deployed %s)", d.Version, shortHash(d.Module), d.Deployed.Format(time.RFC3339))
	kv("INPUT", "%s", d.Input)
	kv("OUTPUTS", "%s", strings.Join(d.Outputs, ","))
	kv("DLQ", "%s", dash(d.DLQ))
	var env []string
	for _, k := range slices.Sorted(maps.Keys(d.Spec.Env)) {
		env = append(env, k+"="+d.Spec.Env[k])
	}
	kv("ENV", "%s", dash(strings.Join(env, " ")))
	kv("LIMITS", "memory %dMiB, timeout %v, instances %d, retries %d, max failures %d",
		d.Spec.MemoryMB, d.Spec.Timeout, d.Spec.Instances, d.Spec.Retries, d.Spec.MaxFailures)
	kv("GROUP", "%s", d.Group)
	kv("LAG", "%d", d.Lag)
	kv("RECORDS", "%d in, %d out, %d errors, %d dead-lettered", d.RecordsIn, d.RecordsOut, d.Errors, d.DeadLettered)
	kv("INSTANCES", "%d live (%d idle), %d created, %d discarded", d.Instances.Live, d.Instances.Idle,
		d.Instances.Created, d.Instances.Discarded)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(d.Partitions) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "PARTITION\tWORKER\tCOMMITTED\tHIGH-WATERMARK\tLAG\tIN\tOUT\tERRORS\tDEAD-LETTERED\tLAST-ERROR")
	for _, p := range d.Partitions {
		committed := "-"
		if p.Committed >= 0 {
			committed = strconv.FormatInt(p.Committed, 10)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", p.Partition, dash(p.Worker), committed,
			p.HighWatermark, p.Lag, p.RecordsIn, p.RecordsOut, p.Errors, p.DeadLettered, dash(clip(oneLine(p.LastError), 60)))
	}
	return tw.Flush()
}

// parseSince reads --since: a duration back from now ("10m"), an RFC 3339
// time, or milliseconds since the epoch.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms >= 0 {
		return time.UnixMilli(ms), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration such as 10m, an RFC 3339 time, or ms since the epoch", s)
}

func newFnLogsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print a function's log: what the module wrote to stdout and stderr, and what the node reports",
		Long: `Print the log lines the node keeps for a function (the last 1000): what
the module wrote to stdout and stderr, and lines of the node itself (stream
"wisp": deploys, state changes, failures, dead letters). With -f, keep
printing new lines until Ctrl-C or the function is deleted. --format json
prints one JSON object per line: time, stream, text.`,
		Example: `  wisp fn logs mask --since 10m
  wisp fn logs mask -f`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := clientOptsFrom(cmd)
			if err != nil {
				return err
			}
			follow, _ := cmd.Flags().GetBool("follow")
			var since time.Time
			if s, _ := cmd.Flags().GetString("since"); s != "" {
				if since, err = parseSince(s, time.Now()); err != nil {
					return usageError(cmd, "%v", err)
				}
			}
			c, err := o.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			w := cmd.OutOrStdout()
			var werr error
			emit := func(l client.FunctionLogLine) {
				if werr != nil {
					return
				}
				if o.json() {
					b, _ := json.Marshal(l)
					_, werr = fmt.Fprintf(w, "%s\n", b)
					return
				}
				_, werr = fmt.Fprintf(w, "%s %-6s %s\n", l.Time.Format("2006-01-02T15:04:05.000Z07:00"), l.Stream, l.Text)
			}
			if !follow {
				ctx, cancel := o.adminCtx(cmd.Context())
				defer cancel()
				lines, err := c.FunctionLogs(ctx, args[0], since)
				if err != nil {
					return fnExplain(o, err, args[0])
				}
				for _, l := range lines {
					emit(l)
				}
				return werr
			}
			err = c.FollowFunctionLogs(cmd.Context(), args[0], since, emit)
			if werr != nil {
				return werr
			}
			if err != nil && cmd.Context().Err() != nil {
				return nil // Ctrl-C
			}
			return fnExplain(o, err, args[0])
		},
	}
	cmd.Flags().BoolP("follow", "f", false, "keep printing new lines until Ctrl-C")
	cmd.Flags().String("since", "", "only lines since then: a duration (10m), an RFC 3339 time, or ms since the epoch")
	return cmd
}

func newFnStateCmd(verb, short string) *cobra.Command {
	past := map[string]string{"pause": "paused", "resume": "resumed", "delete": "deleted"}[verb]
	return &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := clientOptsFrom(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := o.adminCtx(cmd.Context())
			defer cancel()
			c, err := o.connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			op := map[string]func(context.Context, string) error{
				"pause": c.PauseFunction, "resume": c.ResumeFunction, "delete": c.DeleteFunction}[verb]
			if err := op(ctx, args[0]); err != nil {
				return fnExplain(o, err, args[0])
			}
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]string{"name": args[0], "result": past})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s function %q\n", past, args[0])
			return err
		},
	}
}

func newFnTestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "test --module FILE.wasm < input.ndjson",
		Short: "Run a module locally over NDJSON records and print what it writes (no server needed)",
		Long: `Run a WASM module over records read as NDJSON from stdin and print what it
writes, one JSON object per output record, in input order, and one
{"offset": N, "error": ".."} per input record it fails on. No server is
involved; the module is validated as a deploy would.

Input, one record per line, every field optional:

  {"key": "k1", "value": {"user": "ann"}, "headers": {"h": "v"},
   "timestamp": 1700000000000, "offset": 7, "partition": 0, "topic": "clicks"}

A JSON string value is its bytes, other JSON its compact text;
"value_format": "binary" means base64. The module's stdout and stderr go to
stderr.`,
		Example: `  echo '{"value":{"email":"ann@example.com"}}' | wisp fn test --module bin/wasm/transform.wasm
  wisp fn test --module bin/wasm/router.wasm --env FIELD=type --env ROUTES=click=clicks,view=views \
      --output clicks --output views < events.ndjson`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			path, _ := f.GetString("module")
			if path == "" {
				return usageError(cmd, "missing --module FILE.wasm")
			}
			var opts functions.TestOptions
			opts.Outputs, _ = f.GetStringArray("output")
			opts.Topic, _ = f.GetString("input")
			opts.Timeout, _ = f.GetDuration("timeout")
			envs, _ := f.GetStringArray("env")
			kvs, err := parseKVs(cmd, "env", envs)
			if err != nil {
				return err
			}
			if len(kvs) > 0 {
				opts.Env = map[string]string{}
				for _, kv := range kvs {
					opts.Env[kv[0]] = kv[1]
				}
			}
			if mem, _ := f.GetString("memory"); mem != "" {
				if opts.MemoryMB, err = parseMemory(mem); err != nil {
					return usageError(cmd, "%v", err)
				}
			}
			module, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("--module: %w", err)
			}
			opts.Log = cmd.ErrOrStderr()
			return functions.TestRun(cmd.Context(), module, opts, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.String("module", "", "the WASM module (.wasm) to run")
	f.String("input", "", "input topic the module is told about, for records without one (default \"input\")")
	f.StringArray("output", nil, "declared output topic; repeatable, the first is the default (none: any topic is accepted)")
	f.StringArray("env", nil, "environment variable K=V of the module; repeatable")
	f.String("memory", "", "memory limit, e.g. 64MiB (default 64MiB)")
	f.Duration("timeout", 0, "deadline of one batch, e.g. 2s (default 5s)")
	return cmd
}
