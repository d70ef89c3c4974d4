package main

import (
	_ "github.com/HdrHistogram/hdrhistogram-go"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go"
	_ "github.com/nats-io/nats.go/jetstream"
	_ "github.com/twmb/franz-go/pkg/kgo"
	_ "github.com/wispbus/wisp/client"
)

func main() {}
