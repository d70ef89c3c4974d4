// Package gossip is wisp's cluster membership: who is alive and how to
// reach them, over hashicorp/memberlist (SWIM gossip on one TCP+UDP port).
//
//	cfg := gossip.DefaultConfig()
//	cfg.NodeID = 2
//	cfg.BindAddr = "127.0.0.1:7947"
//	cfg.Join = []string{"127.0.0.1:7946"}
//	cfg.Meta = gossip.Meta{ID: 2, QUIC: "127.0.0.1:7071"}
//	g, err := gossip.New(cfg)
//	if err != nil { ... }
//	defer g.Close()
//	for _, m := range g.Members() { ... m.Meta.QUIC ... }
//
// Membership is level-triggered for its users: Changed signals that
// something changed and Members / Known tell what the membership is now;
// Config.OnEvent additionally delivers every event in order.
//
// Goroutines: memberlist's own (stopped by Close), one event dispatcher
// when Config.OnEvent is set and one joiner when Config.Join is set; Close
// stops them and returns when they are gone.
package gossip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrClosed is returned by calls on a closed Gossip.
var ErrClosed = errors.New("gossip: closed")

// Meta is what a node tells the cluster about itself.
type Meta struct {
	ID    int32  `json:"id"`
	QUIC  string `json:"q,omitempty"` // QUIC address (udp host:port): clients, replication, raft
	Kafka string `json:"k,omitempty"` // Kafka listener advertised to clients, "" when disabled
	HTTP  string `json:"h,omitempty"` // HTTP listener, "" when disabled
	Rack  string `json:"r,omitempty"`
	// Raft is set once the node holds Raft state (it is, or was, part of
	// the metadata group); bootstrap decisions use it.
	Raft bool `json:"rs,omitempty"`
}

// metaMax is memberlist's limit on node metadata.
const metaMax = memberlist.MetaMaxSize

func (m Meta) encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	if len(b) > metaMax {
		return nil, fmt.Errorf("gossip: node metadata is %d bytes (max %d)", len(b), metaMax)
	}
	return b, nil
}

// State is a member's state as this node knows it.
type State uint8

// Member states.
const (
	StateAlive State = iota // answering probes (or suspected, not yet declared dead)
	StateDead               // failed: it stopped answering
	StateLeft               // left gracefully (Leave)
)

func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Member is one node of the cluster.
type Member struct {
	Meta
	// Addr is the member's gossip address (host:port).
	Addr  string
	State State
}

// EventType is the kind of a membership event.
type EventType uint8

// Event types.
const (
	EventJoin   EventType = iota + 1 // a member appeared (or came back)
	EventLeave                       // a member left gracefully
	EventFail                        // a member was declared dead
	EventUpdate                      // a member changed its metadata
)

func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventLeave:
		return "leave"
	case EventFail:
		return "fail"
	case EventUpdate:
		return "update"
	}
	return "event(" + strconv.Itoa(int(t)) + ")"
}

// Event is one membership change.
type Event struct {
	Type   EventType
	Member Member
}

// Gossip is this node's membership in the cluster.
type Gossip struct {
	cfg Config
	log *slog.Logger
	ml  *memberlist.Memberlist

	changed chan struct{} // cap 1: something changed (Changed)
	wake    chan struct{} // cap 1: the dispatcher has events
	stop    chan struct{} // closed by Close
	wg      sync.WaitGroup

	mu     sync.Mutex // guards the fields below; never held while calling memberlist
	meta   Meta
	encMet []byte
	local  string // LocalAddr, fixed once memberlist is up
	// known is every member ever seen, by memberlist node name, as the
	// event callbacks reported it. memberlist's own Members() hands out
	// pointers into state it mutates under its lock, so this package
	// keeps copies instead.
	known  map[string]known
	queue  []Event
	joined bool // another member was seen
	// leaving holds the members that announced a graceful Leave, so that
	// their departure is reported as EventLeave, not EventFail.
	leaving map[string]bool
	closed  bool
}

// New validates cfg, binds the gossip port and starts gossiping. It joins
// cfg.Join in the background (see Config.Join).
func New(cfg Config) (*Gossip, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	cfg.Meta.ID = cfg.NodeID
	enc, err := cfg.Meta.encode()
	if err != nil {
		return nil, err
	}
	g := &Gossip{
		cfg: cfg, log: logger, meta: cfg.Meta, encMet: enc,
		changed: make(chan struct{}, 1), wake: make(chan struct{}, 1), stop: make(chan struct{}),
		known: map[string]known{}, leaving: map[string]bool{},
	}

	mc := memberlist.DefaultLANConfig()
	mc.Name = strconv.Itoa(int(cfg.NodeID))
	host, port, err := splitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip: BindAddr: %w", err)
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = "", port
	if cfg.Advertise != "" {
		ah, ap, err := splitHostPort(cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("gossip: Advertise: %w", err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ah, ap
	}
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.SuspicionMult = cfg.SuspicionMult
	mc.GossipInterval = cfg.GossipInterval
	mc.PushPullInterval = cfg.PushPullInterval
	mc.TCPTimeout = 2 * time.Second
	// A node that restarts on another gossip port (same id) may take its
	// name back from a dead incarnation quickly.
	mc.DeadNodeReclaimTime = 2 * time.Second
	if len(cfg.Key) > 0 {
		mc.SecretKey = slices.Clone(cfg.Key)
	}
	mc.Delegate = delegate{g}
	mc.Events = delegate{g}
	mc.Logger = log.New(&slogWriter{log: logger}, "", 0)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	g.ml = ml
	// Only the local node's incarnation and metadata ever change, never its
	// address: read it once.
	n := ml.LocalNode()
	g.local = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	if cfg.OnEvent != nil {
		g.wg.Add(1)
		go g.dispatch()
	}
	if len(cfg.Join) > 0 {
		g.wg.Add(1)
		go g.joiner()
	}
	g.log.Info("gossip listening", "addr", g.LocalAddr(), "node", cfg.NodeID, "encrypted", len(cfg.Key) > 0)
	return g, nil
}

func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return h, n, nil
}

// LocalAddr is the gossip address other members reach this node at.
func (g *Gossip) LocalAddr() string {
	return g.local
}

// Meta returns this node's current metadata.
func (g *Gossip) Meta() Meta {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.meta
}

// SetMeta replaces this node's metadata and broadcasts it (an EventUpdate
// on the other members). m.ID is forced to the node id.
func (g *Gossip) SetMeta(m Meta) error {
	m.ID = g.cfg.NodeID
	enc, err := m.encode()
	if err != nil {
		return err
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ErrClosed
	}
	if bytes.Equal(enc, g.encMet) {
		g.mu.Unlock()
		return nil
	}
	g.meta, g.encMet = m, enc
	g.mu.Unlock()
	if err := g.ml.UpdateNode(2 * time.Second); err != nil {
		return fmt.Errorf("gossip: update metadata: %w", err)
	}
	return nil
}

// known is a member as last reported, with what SendReliable needs.
type known struct {
	Member
	node memberlist.Node // Name, Addr, Port (copies)
}

// Members returns the live members whose metadata
// decodes, this node included, sorted by id.
func (g *Gossip) Members() []Member {
	return g.list(true)
}

// Known returns every member ever seen since New with its latest state
// (alive, dead or left), this node
// included, sorted by id.
func (g *Gossip) Known() []Member {
	return g.list(false)
}

func (g *Gossip) list(liveOnly bool) []Member {
	g.mu.Lock()
	out := make([]Member, 0, len(g.known)+1)
	self := strconv.Itoa(int(g.cfg.NodeID))
	for name, k := range g.known {
		if name == self || (liveOnly && (k.State == StateDead || k.State == StateLeft)) {
			continue
		}
		out = append(out, k.Member)
	}
	out = append(out, Member{Meta: g.meta, Addr: g.local, State: StateAlive})
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return int(a.ID) - int(b.ID) })
	return out
}

// Joined reports whether this node has met another member (through Join
// or because another node joined it).
func (g *Gossip) Joined() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.joined
}

// Changed returns a channel that receives a value after membership
// changes (coalesced: several changes may give one value). It is meant for
// one consumer, which then reads Members or Known.
func (g *Gossip) Changed() <-chan struct{} { return g.changed }

// Join contacts the given gossip addresses and merges their view of the
// cluster. It returns how many answered; an error only if none did.
func (g *Gossip) Join(addrs []string) (int, error) {
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	n, err := g.ml.Join(addrs)
	if n > 0 {
		g.mu.Lock()
		g.joined = true
		g.mu.Unlock()
		return n, nil
	}
	if err != nil {
		return 0, fmt.Errorf("gossip: join %v: %w", addrs, err)
	}
	return 0, fmt.Errorf("gossip: join %v: no member answered", addrs)
}

// Leave tells the cluster this node is leaving (the others see
// EventLeave rather than EventFail) and waits up to timeout for the
// message to spread. Call Close afterwards.
func (g *Gossip) Leave(timeout time.Duration) error {
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		return ErrClosed
	}
	g.announceLeave()
	if err := g.ml.Leave(timeout); err != nil {
		return fmt.Errorf("gossip: leave: %w", err)
	}
	return nil
}

// Close stops gossiping (without Leave the others declare this node dead
// after the failure-detection timeout) and returns once every goroutine is
// gone.
func (g *Gossip) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.mu.Unlock()
	close(g.stop)
	err := g.ml.Shutdown()
	g.wg.Wait()
	if err != nil {
		return fmt.Errorf("gossip: shutdown: %w", err)
	}
	return nil
}

// member decodes a memberlist node.
func (g *Gossip) member(n *memberlist.Node) (Member, bool) {
	var meta Meta
	if err := json.Unmarshal(n.Meta, &meta); err != nil || meta.ID <= 0 || strconv.Itoa(int(meta.ID)) != n.Name {
		g.log.Debug("gossip member without valid wisp metadata ignored", "name", n.Name, "addr", n.Address())
		return Member{}, false
	}
	return Member{Meta: meta, Addr: n.Address(), State: StateAlive}, true
}

// event records a membership change. It runs on memberlist's goroutines,
// with memberlist's locks held: it must not block or call memberlist.
func (g *Gossip) event(t EventType, n *memberlist.Node) {
	m, ok := g.member(n)
	if !ok {
		return
	}
	g.mu.Lock()
	switch t {
	case EventJoin:
		delete(g.leaving, n.Name)
	case EventLeave:
		// memberlist reports a failure and a graceful leave alike (its
		// Node.State is not maintained); Leave tells every member first.
		m.State = StateDead
		t = EventFail
		if g.leaving[n.Name] {
			m.State = StateLeft
			t = EventLeave
			delete(g.leaving, n.Name)
		}
	}
	g.known[n.Name] = known{Member: m, node: memberlist.Node{Name: n.Name, Addr: slices.Clone(n.Addr), Port: n.Port}}
	if t == EventJoin && m.ID != g.cfg.NodeID {
		g.joined = true
	}
	if g.cfg.OnEvent != nil {
		g.queue = append(g.queue, Event{Type: t, Member: m})
	}
	g.mu.Unlock()
	if t != EventUpdate || m.ID != g.cfg.NodeID {
		g.log.Debug("gossip event", "event", t.String(), "node", m.ID, "addr", m.Addr, "state", m.State.String())
	}
	signal(g.changed)
	signal(g.wake)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// dispatch delivers queued events to Config.OnEvent in order.
func (g *Gossip) dispatch() {
	defer g.wg.Done()
	for {
		select {
		case <-g.stop:
			return
		case <-g.wake:
		}
		for {
			g.mu.Lock()
			if len(g.queue) == 0 {
				g.mu.Unlock()
				break
			}
			ev := g.queue[0]
			g.queue = g.queue[1:]
			g.mu.Unlock()
			g.cfg.OnEvent(ev)
		}
	}
}

// joiner joins Config.Join in the background: quickly until the first
// success, then every RejoinInterval for addresses that are not live
// members.
func (g *Gossip) joiner() {
	defer g.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		var todo []string
		if !g.Joined() {
			todo = g.cfg.Join
		} else {
			live := map[string]bool{}
			for _, m := range g.Members() {
				live[m.Addr] = true
			}
			for _, a := range g.cfg.Join {
				if !live[a] {
					todo = append(todo, a)
				}
			}
		}
		wait := g.cfg.RejoinInterval
		if len(todo) > 0 {
			if n, err := g.Join(todo); err != nil {
				g.log.Debug("gossip join failed; retrying", "addrs", todo, "err", err)
			} else {
				g.log.Debug("gossip joined", "addrs", todo, "answered", n)
			}
			if !g.Joined() {
				wait = backoff
				backoff = min(2*backoff, 2*time.Second)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-g.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// msgLeaving starts the user message a node sends every member before it
// leaves gracefully; the node name follows.
const msgLeaving = 'L'

// announceLeave tells every live member, over memberlist's reliable (TCP)
// channel and in parallel, that this node is about to leave. A member that
// misses it reports the departure as a failure.
func (g *Gossip) announceLeave() {
	self := strconv.Itoa(int(g.cfg.NodeID))
	msg := append([]byte{msgLeaving}, self...)
	var peers []*memberlist.Node
	g.mu.Lock()
	for name, k := range g.known {
		if name != self && k.State == StateAlive {
			node := k.node
			peers = append(peers, &node)
		}
	}
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.ml.SendReliable(n, msg); err != nil {
				g.log.Debug("gossip: leave announcement failed", "node", n.Name, "err", err)
			}
		}()
	}
	// Each send is bounded by memberlist's TCPTimeout.
	wg.Wait()
}

// delegate is memberlist's view of the Gossip.
type delegate struct{ g *Gossip }

func (d delegate) NodeMeta(limit int) []byte {
	d.g.mu.Lock()
	defer d.g.mu.Unlock()
	if len(d.g.encMet) > limit {
		return nil // SetMeta refuses metadata above MetaMaxSize
	}
	return slices.Clone(d.g.encMet)
}

func (d delegate) NotifyMsg(msg []byte) {
	if len(msg) > 1 && msg[0] == msgLeaving {
		d.g.mu.Lock()
		d.g.leaving[string(msg[1:])] = true
		d.g.mu.Unlock()
	}
}
func (delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (delegate) LocalState(join bool) []byte                { return nil }
func (delegate) MergeRemoteState(buf []byte, join bool)     {}

func (d delegate) NotifyJoin(n *memberlist.Node)   { d.g.event(EventJoin, n) }
func (d delegate) NotifyLeave(n *memberlist.Node)  { d.g.event(EventLeave, n) }
func (d delegate) NotifyUpdate(n *memberlist.Node) { d.g.event(EventUpdate, n) }

// slogWriter turns memberlist's log lines ("[DEBUG] memberlist: ...") into
// debug records of slog.
type slogWriter struct{ log *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := ""
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			level, line = line[1:i], strings.TrimSpace(line[i+1:])
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	w.log.Debug(line, "component", "memberlist", "level", level)
	return len(p), nil
}
