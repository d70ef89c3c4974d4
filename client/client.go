package client

import (
	"context"
)

// Client is a connection to a wisp cluster: it produces records, runs admin
// requests and creates Consumers. It is safe for concurrent use. Create one
// with New and Close it when done.
type Client struct {
	cfg cfg
	// The rest is in conn.go (connection), producer.go and consumer.go.
	*clientState
}

// New connects to the first reachable server of the Servers option and
// returns a ready Client; other nodes of the cluster are connected to when
// a request needs them. ctx bounds the connection attempt only.
//
//	c, err := client.New(ctx,
//		client.Servers("127.0.0.1:7070"),
//		client.Compression(client.Zstd),
//		client.Linger(10*time.Millisecond))
func New(ctx context.Context, opts ...Opt) (*Client, error) {
	c := defaultCfg()
	for _, o := range opts {
		o.apply(&c)
	}
	if c.acks == AcksNone {
		c.idempotent = false
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return newClient(ctx, c)
}

// Close delivers the records still buffered (waiting at most the
// RequestTimeout), fails whatever is left with ErrClosed, closes the
// connections and returns once the client's goroutines are gone. Close
// Consumers created from this client before it.
func (c *Client) Close() error { return c.close() }
