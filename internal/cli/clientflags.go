package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wispbus/wisp/client"
)

// The client-side commands (topic, produce, consume, group, cluster) share
// the connection and output flags below. They are persistent flags of each
// top-level client command, so subcommands inherit them and applyEnv sets
// them from WISP_SERVER, WISP_TIMEOUT, ... like every other flag.

// Default values of the shared client flags.
const (
	defaultClientTimeout = 10 * time.Second
	cliClientID          = "wisp-cli"
)

// clientOpts are the parsed shared client flags.
type clientOpts struct {
	servers  []string
	insecure bool
	tlsCA    string
	tlsCert  string
	tlsKey   string
	timeout  time.Duration
	format   string // "text" or "json"
}

// addClientFlags adds the shared flags to a top-level client command and
// makes its flag errors usage errors (exit code 2).
func addClientFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.String("server", client.DefaultServer, "wisp server(s) to connect to, host:port (udp), comma-separated")
	f.Bool("insecure", false, "accept any server certificate (and pin it in the known hosts file)")
	f.String("tls-ca", "", "CA bundle (PEM) that verifies the server certificate")
	f.String("tls-cert", "", "client certificate (PEM) for servers that require mTLS")
	f.String("tls-key", "", "private key (PEM) of --tls-cert")
	f.Duration("timeout", defaultClientTimeout, "bound on connecting and on each request")
	f.String("format", "text", "output format: text or json")
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError(c, "%v", err)
	})
}

// clientOptsFrom reads the shared flags of cmd (inherited ones included).
func clientOptsFrom(cmd *cobra.Command) (clientOpts, error) {
	f := cmd.Flags()
	var o clientOpts
	server, _ := f.GetString("server")
	o.servers = splitList(server)
	o.insecure, _ = f.GetBool("insecure")
	o.tlsCA, _ = f.GetString("tls-ca")
	o.tlsCert, _ = f.GetString("tls-cert")
	o.tlsKey, _ = f.GetString("tls-key")
	o.timeout, _ = f.GetDuration("timeout")
	o.format, _ = f.GetString("format")
	switch {
	case len(o.servers) == 0:
		return o, usageError(cmd, "--server is empty")
	case o.timeout <= 0:
		return o, usageError(cmd, "--timeout %v: want a positive duration", o.timeout)
	case o.format != "text" && o.format != "json":
		return o, usageError(cmd, "--format %q: want text or json", o.format)
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return o, usageError(cmd, "--tls-cert and --tls-key go together")
	}
	return o, nil
}

func (o clientOpts) json() bool { return o.format == "json" }

// connect opens a client with the shared flags, then extra options.
//
// Certificates: a loopback server's self-signed certificate is trusted as
// is (the client library does that); any other server must be vouched for
// by --tls-ca or the system roots, or pinned in the known hosts file
// (~/.config/wisp/known_hosts), which --insecure fills on first use, as
// ssh does.
func (o clientOpts) connect(ctx context.Context, extra ...client.Opt) (*client.Client, error) {
	opts := []client.Opt{
		client.Servers(o.servers...),
		client.ClientID(cliClientID),
		// A dial to a dead node waits out its whole timeout (QUIC has
		// no connection refused); the client's short default leaves
		// room in one --timeout to move on to a new leader.
		client.DialTimeout(min(o.timeout, client.DefaultDialTimeout)),
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
	opts = append(opts, extra...)
	dctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	c, err := client.New(dctx, opts...)
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("cannot connect to %s: no answer within %v (--timeout)", strings.Join(o.servers, ","), o.timeout)
	}
	return nil, o.explain(err, "", "")
}

// adminCtx bounds one admin command by --timeout.
func (o clientOpts) adminCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, o.timeout)
}

// explain turns a client error into the one line the user sees: broker
// errors by what they mean for topic or group, connection failures with a
// hint, timeouts with the flag that sets them.
func (o clientOpts) explain(err error, topic, group string) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	var msg string
	var be *client.BrokerError
	switch {
	case topic != "" && errors.Is(err, kerr.UnknownTopicOrPartition):
		msg = fmt.Sprintf("topic %q does not exist", topic)
	case topic != "" && errors.Is(err, kerr.TopicAlreadyExists):
		msg = fmt.Sprintf("topic %q already exists", topic)
	case group != "" && errors.Is(err, kerr.GroupIDNotFound):
		msg = fmt.Sprintf("group %q does not exist", group)
	case errors.Is(err, context.DeadlineExceeded):
		msg = fmt.Sprintf("timed out after %v (--timeout)", o.timeout)
	case errors.Is(err, client.ErrConnection):
		msg = fmt.Sprintf("cannot connect to %s: %v", strings.Join(o.servers, ","), trimClientPrefix(err.Error()))
	case errors.As(err, &be):
		msg = be.Err.Message
		if be.Message != "" && be.Message != be.Err.Message {
			msg = be.Message + " (" + be.Err.Message + ")"
		}
	default:
		msg = trimClientPrefix(err.Error())
	}
	return errors.New(oneLine(msg))
}

// trimClientPrefix drops the client package's "client: " prefixes, which
// say nothing to a CLI user.
func trimClientPrefix(s string) string {
	s = strings.ReplaceAll(s, "client: broker: ", "")
	s = strings.ReplaceAll(s, "client: connection failed: ", "")
	return strings.ReplaceAll(s, "client: ", "")
}

// oneLine folds a multi-line message (errors.Join) onto one line, as
// every wisp error is.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ; ")), " ")
}

// usageError is a command-line mistake: exit code 2, with a pointer to the
// command's help.
func usageError(cmd *cobra.Command, format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format+" (see '%s --help')", append(args, cmd.CommandPath())...)}
}

// exactArgs is cobra.ExactArgs with usage errors and names for the
// missing arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return usageError(cmd, "missing %s", strings.Join(names[len(args):], " "))
		case len(args) > len(names):
			return usageError(cmd, "unexpected argument %q", args[len(names)])
		}
		return nil
	}
}

// noArgs is cobra.NoArgs with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError(cmd, "unexpected argument %q", args[0])
	}
	return nil
}

// parseKVs parses repeated key=value flags (-c, -H), keeping order.
func parseKVs(cmd *cobra.Command, flag string, kvs []string) ([][2]string, error) {
	out := make([][2]string, 0, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError(cmd, "--%s %q: want key=value", flag, kv)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// groupCmd makes a parent command whose subcommands do the work; run alone
// it is a usage error naming them.
func groupCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			names := make([]string, 0, len(subs))
			for _, s := range subs {
				names = append(names, s.Name())
			}
			if len(args) > 0 {
				return usageError(cmd, "unknown command %q; want one of %s", args[0], strings.Join(names, ", "))
			}
			return usageError(cmd, "missing command; want one of %s", strings.Join(names, ", "))
		},
	}
	cmd.AddCommand(subs...)
	addClientFlags(cmd)
	return cmd
}

// flagChanged reports whether the user gave the flag (on the command line
// or through the environment).
func flagChanged(cmd *cobra.Command, name string) bool {
	f := cmd.Flags().Lookup(name)
	return f != nil && f.Changed
}
