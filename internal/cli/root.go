// Package cli holds wisp's command-line interface, built with cobra. Every
// flag can also be set through the environment as WISP_<FLAG> (dashes become
// underscores: --log-format is WISP_LOG_FORMAT) and, for wisp serve, through
// a YAML file given with --config whose keys are flag names. Precedence:
// flag, then environment, then config file, then the built-in default.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// Version is set at build time with -ldflags "-X github.com/wispbus/wisp/internal/cli.Version=...".
var Version = "dev"

// exitError carries a chosen exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Main runs the CLI with args and returns the process exit code. Errors are
// printed as one line on stderr.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "wisp: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "wisp",
		Short:         "wisp — a WebAssembly-pluggable event bus",
		Long:          "wisp is a partitioned, replicated log with Kafka's protocol and model, QUIC between nodes and clients, and WASM functions that run next to the data.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().String("log-format", "text", "log format: text or json")
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn, error")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		return applyEnv(cmd)
	}
	root.AddCommand(newServeCmd(), newVersionCmd())
	for _, add := range extraCommands {
		root.AddCommand(add())
	}
	return root
}

// extraCommands are registered by the client-side command files (topic,
// produce, consume, ...), keeping root.go independent of them.
var extraCommands []func() *cobra.Command

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the wisp version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "wisp %s\n", Version)
			return nil
		},
	}
}

// envName maps a flag name to its environment variable.
func envName(flag string) string {
	return "WISP_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag of cmd that was not given on the command line
// from its WISP_* environment variable.
func applyEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if serr := setFlag(cmd.Flags(), f.Name, v); serr != nil {
				err = fmt.Errorf("%s: %w", envName(f.Name), serr)
			}
		}
	})
	return err
}

// setFlag sets a flag as if given on the command line, so it counts as
// changed and a lower-precedence source leaves it alone. Slice flags accept
// a comma-separated list.
func setFlag(fs *pflag.FlagSet, name, value string) error {
	f := fs.Lookup(name)
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return sv.Replace(splitList(value))
	}
	return fs.Set(name, value)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// applyConfigFile sets every flag still unset from the YAML file at path,
// whose top-level keys are flag names. Unknown keys are an error, so a typo
// does not pass silently.
func applyConfigFile(cmd *cobra.Command, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for k, v := range m {
		f := cmd.Flags().Lookup(k)
		if f == nil {
			return fmt.Errorf("config %s: unknown key %q (keys are the flag names of 'wisp serve --help')", path, k)
		}
		if f.Changed {
			continue
		}
		var s string
		switch x := v.(type) {
		case []any:
			parts := make([]string, len(x))
			for i := range x {
				parts[i] = fmt.Sprint(x[i])
			}
			s = strings.Join(parts, ",")
		case map[string]any:
			parts := make([]string, 0, len(x))
			for kk, vv := range x {
				parts = append(parts, fmt.Sprintf("%s=%v", kk, vv))
			}
			s = strings.Join(parts, ",")
		default:
			s = fmt.Sprint(x)
		}
		if err := setFlag(cmd.Flags(), k, s); err != nil {
			return fmt.Errorf("config %s: %s: %w", path, k, err)
		}
	}
	return nil
}

// newLogger builds the slog logger from --log-format and --log-level.
func newLogger(cmd *cobra.Command, w io.Writer) (*slog.Logger, error) {
	format, _ := cmd.Flags().GetString("log-format")
	levelName, _ := cmd.Flags().GetString("log-level")
	var level slog.Level
	if err := level.UnmarshalText([]byte(levelName)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", levelName)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
