package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wispbus/wisp/bus"
	"github.com/wispbus/wisp/bus/group"
	"github.com/wispbus/wisp/internal/metrics"
)

// Server is wisp's HTTP frontend, a thin adapter onto a *bus.Broker.
//
//	s, err := httpapi.New(httpapi.DefaultConfig(), broker)
//	...
//	s.Handle("POST /v1/functions", functionsHandler) // optional, before Start
//	if err := s.Start(); err != nil { ... }
//	defer s.Close(ctx)
type Server struct {
	cfg     Config
	b       *bus.Broker
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler
	reg     *prometheus.Registry // this server's broker collector
	rr      atomic.Uint32        // round robin of unkeyed records
	ping    time.Duration        // SSE keep-alive interval

	// closing is closed when Close begins: SSE streams, long polls and
	// NDJSON streams end, /readyz fails.
	closing chan struct{}

	mu     sync.Mutex // guards srv, ln, closed
	srv    *http.Server
	ln     net.Listener
	closed bool
	wg     sync.WaitGroup // the Serve goroutine

	// reqs counts running handlers, so that Close can wait for them even
	// when it has to cut connections (http.Server.Close does not wait).
	reqMu   sync.Mutex
	reqCond *sync.Cond
	reqs    int
}

// New builds a Server on b. It does not listen until Start.
func New(cfg Config, b *bus.Broker) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errors.New("httpapi: nil broker")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{cfg: cfg, b: b, log: logger, mux: http.NewServeMux(), reg: prometheus.NewRegistry(),
		ping: defaultPingInterval, closing: make(chan struct{})}
	s.reqCond = sync.NewCond(&s.reqMu)
	if err := s.reg.Register(busCollector{b: b}); err != nil {
		return nil, err
	}
	s.routes()
	s.handler = s.track(s.mux)
	return s, nil
}

func (s *Server) routes() {
	r := func(pattern, api string, observe bool, h http.HandlerFunc) {
		s.mux.Handle(pattern, instrument(api, observe, h))
	}
	r("GET /healthz", "Healthz", false, s.handleHealth)
	r("GET /readyz", "Readyz", false, s.handleReady)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.Gatherers{metrics.Registry, s.reg},
		promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))

	// A stream's duration is not a latency: NDJSON produce is left out.
	produce, stream := instrument("Produce", true, s.handleProduce), instrument("ProduceStream", false, s.handleProduce)
	s.mux.HandleFunc("POST /v1/topics/{topic}/records", func(w http.ResponseWriter, r *http.Request) {
		if isNDJSON(r) {
			stream.ServeHTTP(w, r)
			return
		}
		produce.ServeHTTP(w, r)
	})
	r("GET /v1/topics/{topic}/records", "Fetch", true, s.handleFetch)
	r("GET /v1/topics/{topic}/records/stream", "Tail", false, s.handleTail)
	r("GET /v1/topics", "ListTopics", true, s.handleListTopics)
	r("POST /v1/topics", "CreateTopic", true, s.handleCreateTopic)
	r("GET /v1/topics/{topic}", "DescribeTopic", true, s.handleGetTopic)
	r("DELETE /v1/topics/{topic}", "DeleteTopic", true, s.handleDeleteTopic)
	r("GET /v1/groups", "ListGroups", true, s.handleGroups)

	// Confluent REST Proxy v2.
	r("POST /topics/{topic}", "ProduceV2", true, s.handleV2Produce)
	r("POST /topics/{topic}/partitions/{partition}", "ProduceV2", true, s.handleV2Produce)
	r("GET /topics", "ListTopicsV2", true, s.handleV2Topics)
	r("GET /topics/{topic}", "DescribeTopicV2", true, s.handleV2Topic)
}

// Handle mounts h on pattern (a net/http ServeMux pattern such as
// "POST /v1/functions"), for packages that add endpoints, e.g. functions.
// Call it before Start; it panics, as ServeMux does, on a pattern that
// conflicts with an existing one.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler is the server's root handler, for tests and for embedding in
// another http.Server.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on Config.Addr and serves in a goroutine owned by the
// Server (Close waits for it).
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.srv != nil {
		return errors.New("httpapi: already started")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.srv, s.ln = srv, ln
	s.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	})
	s.log.Info("http listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the address the server listens on (nil before Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops the server gracefully: it ends SSE tails, long polls and
// NDJSON streams, stops accepting, lets running requests finish, and
// returns when every request and goroutine is gone. If ctx ends first,
// remaining connections are cut (requests see their context canceled) and
// ctx's error is returned.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	srv := s.srv
	s.mu.Unlock()
	var err error
	if srv != nil {
		if err = srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
	}
	s.wg.Wait()
	s.reqMu.Lock()
	for s.reqs > 0 {
		s.reqCond.Wait()
	}
	s.reqMu.Unlock()
	return err
}

// track counts running handlers for Close.
func (s *Server) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.reqMu.Lock()
		s.reqs++
		s.reqMu.Unlock()
		defer func() {
			s.reqMu.Lock()
			if s.reqs--; s.reqs == 0 {
				s.reqCond.Broadcast()
			}
			s.reqMu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

// handleHealth is GET /healthz: the process is up.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReady is GET /readyz: the broker is open and answers, and the
// server is not shutting down.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if err := s.ready(); err != nil {
		WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "node_id": s.b.NodeID(), "topics": len(s.b.Topics())})
}

func (s *Server) ready() error {
	select {
	case <-s.closing:
		return errorf(CodeUnavailable, "shutting down")
	default:
	}
	// Partition checks the broker's closed flag before the name.
	if _, err := s.b.Partition("", 0); errors.Is(err, bus.ErrClosed) {
		return &Error{Code: CodeUnavailable, Message: "broker closed", err: err}
	}
	if _, err := s.b.Groups().FetchOffsets("wisp-readyz", []group.TopicPartition{}); err != nil {
		return &Error{Code: CodeUnavailable, Message: "group coordinator: " + err.Error(), err: err}
	}
	// A cluster node is ready once the metadata has a controller.
	if s.b.Config().Clustered && s.b.ControllerID() < 0 {
		return errorf(CodeUnavailable, "no cluster controller yet")
	}
	return nil
}
