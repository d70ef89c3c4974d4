package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/cluster"
	"github.com/wispbus/wisp/transport"
)

// A single node: the metadata group bootstraps alone (BootstrapExpect 1),
// and topic decisions reach the Applier before CreateTopic returns.
func Example() {
	dir, _ := os.MkdirTemp("", "wisp-example-")
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// A free UDP port for QUIC (a real node uses its --quic address).
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	quicAddr := pc.LocalAddr().String()
	pc.Close()

	bcfg := bus.DefaultConfig()
	bcfg.DataDir, bcfg.Logger = filepath.Join(dir, "broker"), quiet
	broker, err := bus.Open(bcfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer broker.Close()
	tcfg := transport.DefaultConfig()
	tcfg.Addr, tcfg.DataDir, tcfg.Logger = quicAddr, dir, quiet
	srv, err := transport.NewServer(tcfg, broker)
	if err != nil {
		fmt.Println(err)
		return
	}

	cfg := cluster.DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.QUICAddr = 1, dir, quicAddr
	cfg.GossipBind, cfg.Logger = "127.0.0.1:0", quiet
	applier := printer{}
	node, err := cluster.Start(cfg, srv, applier) // before srv.Start: it registers the cluster ALPN
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := srv.Start(); err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer srv.Close(ctx)
	defer node.Close(ctx)

	if err := node.CreateTopic(ctx, bus.TopicSpec{Name: "orders", Partitions: 2}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("controller:", node.ControllerID())
	first, _ := node.AllocateProducerIDs(ctx, 100)
	fmt.Println("producer ids from", first)
	// Output:
	// applied orders: 2 partitions, leader of 0: 1
	// controller: 1
	// producer ids from 0
}

// printer is an Applier that prints what it is told.
type printer struct{}

func (printer) ApplyTopic(ts bus.TopicState) error {
	fmt.Printf("applied %s: %d partitions, leader of 0: %d\n", ts.Name, len(ts.Partitions), ts.Partitions[0].Leader)
	return nil
}

func (printer) ApplyTopicDeleted(name string) error {
	fmt.Println("deleted", name)
	return nil
}
