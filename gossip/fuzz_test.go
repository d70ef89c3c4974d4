package gossip

import (
	"encoding/json"
	"log/slog"
	"net"
	"strconv"
	"testing"

	"github.com/hashicorp/memberlist"
)

// FuzzNodeMeta feeds arbitrary node metadata and user messages, as another
// (possibly hostile or newer) node gossips them, to the delegate callbacks
// of a Gossip that has no memberlist behind it. Nothing may panic; a member
// is only admitted with an id > 0 that matches its memberlist name, and
// Known then reports exactly the metadata it sent.
//
//	go test -run '^$' -fuzz '^FuzzNodeMeta$' -fuzztime 30s ./gossip
func FuzzNodeMeta(f *testing.F) {
	for _, m := range []Meta{
		{ID: 2, QUIC: "127.0.0.1:7070", Kafka: "127.0.0.1:9092", HTTP: "127.0.0.1:8080", Rack: "a", Raft: true},
		{ID: 3},
	} {
		b, err := m.encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, strconv.Itoa(int(m.ID)), uint8(EventJoin), []byte("L2"))
	}
	f.Add([]byte(`{"id":-1}`), "-1", uint8(EventUpdate), []byte{})
	f.Add([]byte(`{"id":2,"q":7}`), "2", uint8(EventLeave), []byte("L"))
	f.Add([]byte(`null`), "0", uint8(EventJoin), []byte("Lnode"))
	f.Add([]byte{}, "", uint8(0), []byte{'L', 0xff})

	f.Fuzz(func(t *testing.T, meta []byte, name string, ev uint8, msg []byte) {
		g := &Gossip{
			cfg: Config{NodeID: 1}, log: slog.New(slog.DiscardHandler), meta: Meta{ID: 1},
			changed: make(chan struct{}, 1), wake: make(chan struct{}, 1), stop: make(chan struct{}),
			known: map[string]known{}, leaving: map[string]bool{},
		}
		d := delegate{g}
		d.NotifyMsg(msg)
		n := &memberlist.Node{Name: name, Addr: net.IPv4(127, 0, 0, 2), Port: 7946, Meta: meta}
		switch EventType(ev % 3) {
		case 0:
			d.NotifyJoin(n)
		case 1:
			d.NotifyUpdate(n)
		default:
			d.NotifyJoin(n)
			d.NotifyLeave(n)
		}
		var want Meta
		admitted := json.Unmarshal(meta, &want) == nil && want.ID > 0 && strconv.Itoa(int(want.ID)) == name
		// This node's own name is never listed from gossip: Known adds
		// it from the local metadata (with no address here).
		admitted = admitted && name != "1"
		var got *Member
		for _, m := range g.Known() {
			if m.Addr != "" {
				if got != nil {
					t.Fatalf("two members from one node: %+v and %+v", *got, m)
				}
				got = &m
			}
		}
		switch {
		case admitted && got == nil:
			t.Fatalf("valid metadata %q of %q not admitted", meta, name)
		case !admitted && got != nil:
			t.Fatalf("invalid metadata %q of %q admitted as %+v", meta, name, *got)
		case admitted && got.Meta != want:
			t.Fatalf("member %+v, sent %+v", got.Meta, want)
		}
		d.NotifyMsg(msg) // after the member is known as well
	})
}
