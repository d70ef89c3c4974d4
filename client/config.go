package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/wispbus/wisp/internal/batch"
)

// Opt configures a Client; pass options to New.
type Opt interface{ apply(*cfg) }

type optFunc func(*cfg)

func (f optFunc) apply(c *cfg) { f(c) }

// Acks is how much durability a produce waits for before the broker
// answers.
type Acks int8

// The acks levels, as in Kafka.
const (
	// AcksNone: the broker does not answer; records may be lost silently.
	// Idempotence is switched off with it.
	AcksNone Acks = 0
	// AcksLeader: the leader appended the batch (and fsynced it when the
	// topic has flush=always).
	AcksLeader Acks = 1
	// AcksAll: every in-sync replica has the batch.
	AcksAll Acks = -1
)

// Codec is a compression codec for produced batches.
type Codec int8

// The codecs of the Kafka protocol.
const (
	NoCompression Codec = Codec(batch.None)
	Gzip          Codec = Codec(batch.Gzip)
	Snappy        Codec = Codec(batch.Snappy)
	LZ4           Codec = Codec(batch.LZ4)
	Zstd          Codec = Codec(batch.Zstd)
)

// String is the codec's Kafka name.
func (c Codec) String() string { return batch.Codec(c).String() }

// ParseCodec maps "none", "gzip", "snappy", "lz4" or "zstd" to a Codec.
func ParseCodec(s string) (Codec, error) {
	c, err := batch.ParseCodec(s)
	return Codec(c), err
}

// Defaults of the options.
const (
	DefaultServer   = "127.0.0.1:7070"
	DefaultClientID = "wisp-go"
	// DefaultDialTimeout is short because a QUIC dial to a dead node
	// gets no connection refused (unlike TCP's RST): it waits out the
	// whole timeout before the client refreshes metadata and moves on to
	// the new leader, which a cluster elects in about two seconds.
	DefaultDialTimeout     = 3 * time.Second
	DefaultRequestTimeout  = 30 * time.Second
	DefaultLinger          = 5 * time.Millisecond
	DefaultBatchMaxBytes   = 1 << 20
	DefaultMaxBufferedRecs = 1 << 20
	DefaultMaxBufferedSize = 256 << 20
	DefaultMaxInflight     = 5
	DefaultRetryBackoff    = 100 * time.Millisecond
	DefaultMaxFrameBytes   = 16 << 20
)

type cfg struct {
	servers        []string
	clientID       string
	tlsConfig      *tls.Config
	tlsCA          string
	tlsCert        string
	tlsKey         string
	insecure       bool
	knownHosts     string
	serverName     string
	dialTimeout    time.Duration
	requestTimeout time.Duration
	maxFrameBytes  int
	logger         *slog.Logger

	// producer
	acks           Acks
	idempotent     bool
	linger         time.Duration
	batchMaxBytes  int
	maxBufRecs     int
	maxBufBytes    int64
	maxInflight    int
	codec          Codec
	partitioner    Partitioner
	retryBackoff   time.Duration
	deliveryTimout time.Duration
}

func defaultCfg() cfg {
	return cfg{
		servers:        []string{DefaultServer},
		clientID:       DefaultClientID,
		dialTimeout:    DefaultDialTimeout,
		requestTimeout: DefaultRequestTimeout,
		maxFrameBytes:  DefaultMaxFrameBytes,
		logger:         slog.New(slog.DiscardHandler),
		acks:           AcksAll,
		idempotent:     true,
		linger:         DefaultLinger,
		batchMaxBytes:  DefaultBatchMaxBytes,
		maxBufRecs:     DefaultMaxBufferedRecs,
		maxBufBytes:    DefaultMaxBufferedSize,
		maxInflight:    DefaultMaxInflight,
		codec:          NoCompression,
		partitioner:    KafkaPartitioner(),
		retryBackoff:   DefaultRetryBackoff,
		deliveryTimout: 2 * time.Minute,
	}
}

func (c *cfg) validate() error {
	switch {
	case len(c.servers) == 0:
		return errors.New("client: no servers")
	case c.batchMaxBytes < 1024:
		return fmt.Errorf("client: BatchMaxBytes %d is below 1024", c.batchMaxBytes)
	case c.batchMaxBytes > c.maxFrameBytes-1024:
		return fmt.Errorf("client: BatchMaxBytes %d does not fit MaxFrameBytes %d", c.batchMaxBytes, c.maxFrameBytes)
	case c.maxInflight < 1 || c.maxInflight > 5:
		return fmt.Errorf("client: MaxInflight %d not in [1, 5]", c.maxInflight)
	case c.maxBufRecs < 1 || c.maxBufBytes < int64(c.batchMaxBytes):
		return errors.New("client: MaxBufferedRecords must be positive and MaxBufferedBytes at least BatchMaxBytes")
	case c.linger < 0:
		return errors.New("client: negative Linger")
	case c.acks != AcksNone && c.acks != AcksLeader && c.acks != AcksAll:
		return fmt.Errorf("client: invalid acks %d", c.acks)
	case c.partitioner == nil:
		return errors.New("client: nil Partitioner")
	}
	if _, err := batch.Compress(batch.Codec(c.codec), nil); err != nil && c.codec != NoCompression {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// Servers sets the seed addresses ("host:port", UDP) to connect to, tried
// in order, overriding the default of "127.0.0.1:7070". An address may
// also be a comma-separated list ("n1:7070,n2:7070"). The seeds only
// bootstrap: the client learns every node of the cluster from the metadata
// and connects to each partition's leader and each group's coordinator
// directly, with the same TLS settings.
func Servers(addrs ...string) Opt {
	return optFunc(func(c *cfg) {
		c.servers = nil
		for _, a := range addrs {
			for _, s := range strings.Split(a, ",") {
				if s = strings.TrimSpace(s); s != "" {
					c.servers = append(c.servers, s)
				}
			}
		}
	})
}

// ClientID sets the client id sent with group joins and shown in group
// descriptions, overriding the default of "wisp-go".
func ClientID(id string) Opt { return optFunc(func(c *cfg) { c.clientID = id }) }

// TLSConfig sets the whole TLS configuration, overriding the default of
// trusting loopback servers, verifying others against the system roots (or
// TLSCA) and pinning in the KnownHosts file. The ALPN "wisp/1" is added
// when NextProtos is empty.
func TLSConfig(tc *tls.Config) Opt { return optFunc(func(c *cfg) { c.tlsConfig = tc }) }

// TLSCA sets a PEM file of CA certificates that verify the server,
// overriding the default of the system roots (plus loopback trust).
func TLSCA(path string) Opt { return optFunc(func(c *cfg) { c.tlsCA = path }) }

// TLSClientCert sets the client certificate and key (PEM files) presented
// to servers that require mutual TLS, overriding the default of none.
func TLSClientCert(certFile, keyFile string) Opt {
	return optFunc(func(c *cfg) { c.tlsCert, c.tlsKey = certFile, keyFile })
}

// TLSServerName sets the name checked against the server certificate,
// overriding the default of the host part of the server address.
func TLSServerName(name string) Opt { return optFunc(func(c *cfg) { c.serverName = name }) }

// InsecureSkipVerify accepts any server certificate, overriding the default
// of verifying it. Use only for testing.
func InsecureSkipVerify() Opt { return optFunc(func(c *cfg) { c.insecure = true }) }

// KnownHosts turns on trust-on-first-use pinning in the file at path
// (lines "host:port sha256-hex-of-the-certificate"): the first connection
// to a server that no CA vouches for records its certificate fingerprint,
// later ones must present the same certificate. This overrides the default
// of no pinning, where a self-signed certificate is accepted only from a
// loopback address. The wisp CLI uses ~/.config/wisp/known_hosts.
func KnownHosts(path string) Opt { return optFunc(func(c *cfg) { c.knownHosts = path }) }

// DialTimeout bounds connecting (QUIC and TLS handshakes), overriding the
// default of 3s.
func DialTimeout(d time.Duration) Opt { return optFunc(func(c *cfg) { c.dialTimeout = d }) }

// RequestTimeout bounds one request/response exchange when the caller's
// context has no earlier deadline, overriding the default of 30s (Kafka's
// request.timeout.ms). Group joins wait for the rebalance timeout on top
// of it. It also bounds a produce request: the broker waits at most this
// long for replicas (acks=all), and a request still unanswered a quarter of
// it later (at least 1s) fails its connection, so its batches are resent,
// to the partition's leader as fresh metadata names it. A node that
// vanished without closing the connection is noticed sooner, after 8s
// without a packet (the client sends QUIC keep-alives every 2s).
func RequestTimeout(d time.Duration) Opt { return optFunc(func(c *cfg) { c.requestTimeout = d }) }

// MaxFrameBytes bounds one protocol frame in either direction, overriding
// the default of 16 MiB. It must match the server's limit or exceed it.
func MaxFrameBytes(n int) Opt { return optFunc(func(c *cfg) { c.maxFrameBytes = n }) }

// Logger sets where the client logs reconnects and retries, overriding the
// default of discarding logs.
func Logger(l *slog.Logger) Opt { return optFunc(func(c *cfg) { c.logger = l }) }

// RequiredAcks sets the produce acks, overriding the default of AcksAll.
// AcksNone switches idempotence off.
func RequiredAcks(a Acks) Opt { return optFunc(func(c *cfg) { c.acks = a }) }

// DisableIdempotentWrite turns off the idempotent producer, overriding the
// default of on. Without it a retried batch may be written twice.
func DisableIdempotentWrite() Opt { return optFunc(func(c *cfg) { c.idempotent = false }) }

// Linger sets how long a partition's batch waits for more records before it
// is sent, overriding the default of 5ms. Zero sends as soon as the
// connection is free; a full batch (BatchMaxBytes) is sent at once.
func Linger(d time.Duration) Opt { return optFunc(func(c *cfg) { c.linger = d }) }

// BatchMaxBytes bounds one produced RecordBatch, header included, before
// compression, overriding the default of 1 MiB (the broker's default
// max.message.bytes is 1 MiB + 12). A record that does not fit an empty
// batch fails with ErrRecordTooLarge.
func BatchMaxBytes(n int) Opt { return optFunc(func(c *cfg) { c.batchMaxBytes = n }) }

// MaxBufferedRecords bounds the records produced but not yet acknowledged,
// overriding the default of 1,048,576. Produce blocks (until its context
// ends) while the buffer is full.
func MaxBufferedRecords(n int) Opt { return optFunc(func(c *cfg) { c.maxBufRecs = n }) }

// MaxBufferedBytes bounds the bytes of keys, values and headers produced but
// not yet acknowledged, overriding the default of 256 MiB. Produce blocks
// (until its context ends) while the buffer is full.
func MaxBufferedBytes(n int64) Opt { return optFunc(func(c *cfg) { c.maxBufBytes = n }) }

// MaxInflight sets how many batches per partition may await their answer on
// the produce stream, from 1 to 5, overriding the default of 5. Order is
// kept either way: answers arrive in order, and with idempotence a retry
// after a failure resends the same sequences in the same order.
func MaxInflight(n int) Opt { return optFunc(func(c *cfg) { c.maxInflight = n }) }

// Compression sets the codec of produced batches, overriding the default of
// NoCompression.
func Compression(codec Codec) Opt { return optFunc(func(c *cfg) { c.codec = codec }) }

// RecordPartitioner sets how records are spread over partitions,
// overriding the default of KafkaPartitioner().
func RecordPartitioner(p Partitioner) Opt { return optFunc(func(c *cfg) { c.partitioner = p }) }

// RetryBackoff sets the pause before a failed produce is retried (after a
// reconnect, when the connection dropped, or on the new leader after a
// metadata refresh), overriding the default of 100ms. It is also the least
// time between two metadata refreshes asked for by failures.
func RetryBackoff(d time.Duration) Opt { return optFunc(func(c *cfg) { c.retryBackoff = d }) }

// DeliveryTimeout bounds how long a record may wait, retries included,
// before its callback gets an error, overriding the default of 2 minutes.
func DeliveryTimeout(d time.Duration) Opt { return optFunc(func(c *cfg) { c.deliveryTimout = d }) }
