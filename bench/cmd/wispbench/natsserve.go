package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// natsCluster is what one server of a 3-server JetStream cluster needs:
// its name, its route listener and the routes of the others.
type natsCluster struct {
	name, listen string
	routes       []string
}

// serveNATS runs nats-server (the library, as nats-server's own main does)
// with JetStream on file storage in dir, until SIGTERM. syncAlways is the
// config file's `sync_interval: always`: fsync after every write. Without
// it the server keeps its default (fsync every 2 minutes). cl, when its
// listen address is set, makes the server one of a cluster
// ("wispbench") whose other members are at cl.routes.
func serveNATS(addr, dir string, syncAlways bool, cl natsCluster) error {
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
	if cl.listen != "" {
		ch, cp, err := net.SplitHostPort(cl.listen)
		if err != nil {
			return err
		}
		cport, err := strconv.Atoi(cp)
		if err != nil {
			return err
		}
		opts.ServerName = cl.name
		opts.Cluster.Name = "wispbench"
		opts.Cluster.Host, opts.Cluster.Port = ch, cport
		for _, r := range cl.routes {
			u, err := url.Parse("nats://" + r)
			if err != nil {
				return err
			}
			opts.Routes = append(opts.Routes, u)
		}
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
	if cl.listen == "" && !s.JetStreamEnabled() {
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
