package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/wispbus/wisp/functions"
	"github.com/wispbus/wisp/wasm"
)

// Functions is what the HTTP API needs of the node's function manager;
// *functions.Manager implements it. See MountFunctions.
type Functions interface {
	Deploy(ctx context.Context, m functions.Manifest, module []byte) (functions.Info, error)
	List() []functions.Info
	Describe(name string) (functions.Detail, error)
	Logs(name string, since time.Time) ([]functions.LogLine, error)
	Pause(ctx context.Context, name string) error
	Resume(ctx context.Context, name string) error
	Delete(ctx context.Context, name string) error
}

var _ Functions = (*functions.Manager)(nil)

// Error codes of the function endpoints.
const (
	CodeFunctionNotFound = 40403 // no function has that name
	CodeInvalidFunction  = 42203 // invalid manifest, or a module that does not compile or lacks the ABI
)

// MaxModuleBytes bounds the body of POST /v1/functions (module and
// manifest): 32 MiB, or Config.MaxBodyBytes if larger. A Go module is a
// few MiB.
const MaxModuleBytes = 32 << 20

// MountFunctions adds the function endpoints, served by f. Call it before
// Start.
//
//	POST   /v1/functions                 deploy: multipart/form-data with the parts
//	                                     "manifest" (JSON) and "module" (the .wasm) → 201 + the function
//	GET    /v1/functions                 {"functions":[..]} sorted by name
//	GET    /v1/functions/{name}          one function, with its manifest and partitions
//	GET    /v1/functions/{name}/logs     {"lines":[..]}; ?since=RFC3339|ms|duration (e.g. 10m)
//	POST   /v1/functions/{name}/pause    204
//	POST   /v1/functions/{name}/resume   204
//	DELETE /v1/functions/{name}          204
func (s *Server) MountFunctions(f Functions) {
	h := &functionsHandler{s: s, f: f}
	r := func(pattern, api string, hf http.HandlerFunc) {
		s.mux.Handle(pattern, instrument(api, true, hf))
	}
	r("POST /v1/functions", "FunctionDeploy", h.deploy)
	r("GET /v1/functions", "FunctionList", h.list)
	r("GET /v1/functions/{name}", "FunctionDescribe", h.describe)
	r("GET /v1/functions/{name}/logs", "FunctionLogs", h.logs)
	r("POST /v1/functions/{name}/pause", "FunctionPause", h.state(f.Pause))
	r("POST /v1/functions/{name}/resume", "FunctionResume", h.state(f.Resume))
	r("DELETE /v1/functions/{name}", "FunctionDelete", h.state(f.Delete))
}

type functionsHandler struct {
	s *Server
	f Functions
}

// functionError maps a function manager error to an *Error.
func functionError(err error) error {
	switch {
	case errors.Is(err, functions.ErrNotFound):
		return &Error{Code: CodeFunctionNotFound, Message: err.Error(), err: err}
	case errors.Is(err, functions.ErrInvalidManifest), errors.Is(err, wasm.ErrInvalidModule):
		return &Error{Code: CodeInvalidFunction, Message: err.Error(), err: err}
	case errors.Is(err, functions.ErrClosed):
		return &Error{Code: CodeUnavailable, Message: err.Error(), err: err}
	}
	return err
}

func (h *functionsHandler) deploy(w http.ResponseWriter, r *http.Request) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		WriteError(w, errorf(CodeUnsupportedType,
			"POST /v1/functions takes multipart/form-data with the parts \"manifest\" (JSON) and \"module\" (the .wasm file)"))
		return
	}
	limit := max(h.s.cfg.MaxBodyBytes, MaxModuleBytes)
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	mr, err := r.MultipartReader()
	if err != nil {
		WriteError(w, errorf(CodeBadParam, "multipart body: %v", err))
		return
	}
	var manifest, module []byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			WriteError(w, bodyError(err))
			return
		}
		b, err := io.ReadAll(p)
		if err != nil {
			WriteError(w, bodyError(err))
			return
		}
		switch p.FormName() {
		case "manifest":
			manifest = b
		case "module":
			module = b
		default:
			WriteError(w, errorf(CodeBadParam, "unknown part %q (want \"manifest\" and \"module\")", p.FormName()))
			return
		}
	}
	if manifest == nil || len(module) == 0 {
		WriteError(w, errorf(CodeInvalidFunction, "want the parts \"manifest\" (JSON) and \"module\" (the .wasm file)"))
		return
	}
	var m functions.Manifest
	dec := json.NewDecoder(bytes.NewReader(manifest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		WriteError(w, &Error{Code: CodeBadJSON, Message: "manifest: " + err.Error(), err: err})
		return
	}
	info, err := h.f.Deploy(r.Context(), m, module)
	if err != nil {
		WriteError(w, functionError(err))
		return
	}
	writeJSON(w, http.StatusCreated, info)
}

// bodyError reports a body that could not be read: too large (413) or cut.
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return errorf(CodeBadParam, "multipart body: %v", err)
}

func (h *functionsHandler) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"functions": h.f.List()})
}

func (h *functionsHandler) describe(w http.ResponseWriter, r *http.Request) {
	d, err := h.f.Describe(r.PathValue("name"))
	if err != nil {
		WriteError(w, functionError(err))
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (h *functionsHandler) logs(w http.ResponseWriter, r *http.Request) {
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		var err error
		if since, err = parseSince(v, time.Now()); err != nil {
			WriteError(w, errorf(CodeBadParam, "since: %v", err))
			return
		}
	}
	lines, err := h.f.Logs(r.PathValue("name"), since)
	if err != nil {
		WriteError(w, functionError(err))
		return
	}
	if lines == nil {
		lines = []functions.LogLine{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"lines": lines})
}

func (h *functionsHandler) state(op func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := op(r.Context(), r.PathValue("name")); err != nil {
			WriteError(w, functionError(err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// parseSince reads ?since=: an RFC 3339 time, milliseconds since the
// epoch, or a duration back from now ("10m").
func parseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, errors.New("want an RFC 3339 time, milliseconds since the epoch, or a duration such as 10m")
	}
	return now.Add(-d), nil
}
