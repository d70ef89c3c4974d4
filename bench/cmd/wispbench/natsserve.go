package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// serveNATS runs nats-server (the library, as nats-server's own main does)
// with JetStream on file storage in dir, until SIGTERM. syncAlways is the
// config file's `sync_interval: always`: fsync after every write. Without
// it the server keeps its default (fsync every 2 minutes).
func serveNATS(addr, dir string, syncAlways bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return err
	}
	opts := &natsserver.Options{
		Host:      host,
		Port:      p,
		JetStream: true,
		StoreDir:  dir,
		NoSigs:    true,
		// 4 GiB memory and unlimited file store: the runs write a few GB.
		JetStreamMaxMemory: 4 << 30,
		JetStreamMaxStore:  -1,
	}
	if syncAlways {
		// What the config parser does for `sync_interval: always`.
		opts.SyncAlways = true
		opts.SyncInterval = 2 * time.Minute
	}
	s, err := natsserver.NewServer(opts)
	if err != nil {
		return err
	}
	s.ConfigureLogger()
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		return fmt.Errorf("nats-server not ready")
	}
	if !s.JetStreamEnabled() {
		return fmt.Errorf("jetstream not enabled")
	}
	fmt.Fprintln(os.Stderr, "READY")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}
