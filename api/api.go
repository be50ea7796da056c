package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/fleetvault/fleetvault/httpguard"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/service"
)

// APIPrefix is where the authenticated JSON API lives.
const APIPrefix = apiclient.APIPrefix

// maxAuditPath is how much of an unauthenticated request's path the audit
// log keeps.
const maxAuditPath = 256

// Limits on request bodies. An import may carry many devices.
const (
	maxJSONBody   = 1 << 20  // 1 MiB
	maxImportBody = 32 << 20 // 32 MiB
)

// route is one entry of the API's route table. The OpenAPI test enumerates
// this table, so every route lives here and nowhere else.
type route struct {
	method  string
	pattern string // a net/http pattern path, {name} for a wildcard
	open    bool   // no token needed
	local   bool   // no token needed from a loopback address, or with Options.MetricsOpen
	handle  handler
}

// handler serves one route as the caller ss (nil on an open route).
type handler func(s *API, ss *service.Session, w http.ResponseWriter, r *http.Request) error

// routes is the whole HTTP API.
func routes() []route {
	return []route{
		{method: "GET", pattern: "/healthz", open: true, handle: (*API).handleHealthz},
		{method: "GET", pattern: "/metrics", local: true, handle: (*API).handleMetrics},

		{method: "GET", pattern: APIPrefix + "/devices", handle: (*API).handleListDevices},
		{method: "POST", pattern: APIPrefix + "/devices", handle: (*API).handleAddDevices},
		{method: "POST", pattern: APIPrefix + "/devices/import", handle: (*API).handleImportDevices},
		{method: "GET", pattern: APIPrefix + "/devices/{id}", handle: (*API).handleGetDevice},
		{method: "DELETE", pattern: APIPrefix + "/devices/{id}", handle: (*API).handleDeleteDevice},
		{method: "PATCH", pattern: APIPrefix + "/devices/{id}", handle: (*API).handleUpdateDevice},

		{method: "GET", pattern: APIPrefix + "/groups", handle: (*API).handleListGroups},
		{method: "POST", pattern: APIPrefix + "/groups", handle: (*API).handleCreateGroup},
		{method: "GET", pattern: APIPrefix + "/groups/{name}", handle: (*API).handleGetGroup},
		{method: "POST", pattern: APIPrefix + "/groups/{name}/members", handle: (*API).handleAddMembers},
		{method: "DELETE", pattern: APIPrefix + "/groups/{name}/members", handle: (*API).handleRemoveMembers},

		{method: "PUT", pattern: APIPrefix + "/groups/{name}/profile", handle: (*API).handleAttachProfile},

		{method: "GET", pattern: APIPrefix + "/profiles", handle: (*API).handleListProfiles},
		{method: "GET", pattern: APIPrefix + "/profiles/{name}", handle: (*API).handleGetProfile},
		{method: "PUT", pattern: APIPrefix + "/profiles/{name}", handle: (*API).handlePutProfile},

		{method: "GET", pattern: APIPrefix + "/backups", handle: (*API).handleListBackups},
		{method: "GET", pattern: APIPrefix + "/backups/diff", handle: (*API).handleDiffBackups},
		{method: "GET", pattern: APIPrefix + "/backups/{id}", handle: (*API).handleGetBackup},
		{method: "GET", pattern: APIPrefix + "/backups/{id}/certification", handle: (*API).handleGetCertification},
		{method: "PUT", pattern: APIPrefix + "/backups/{id}/certification", handle: (*API).handleCertify},
		{method: "POST", pattern: APIPrefix + "/backups/{id}/test-restore", handle: (*API).handleTestRestore},

		{method: "GET", pattern: APIPrefix + "/certifications", handle: (*API).handleListCertifications},
		{method: "GET", pattern: APIPrefix + "/groups/{name}/certification", handle: (*API).handleGroupCertification},
		{method: "GET", pattern: APIPrefix + "/certification-policies", handle: (*API).handleListCertPolicies},
		{method: "PUT", pattern: APIPrefix + "/certification-policies/{category}", handle: (*API).handlePutCertPolicy},

		{method: "GET", pattern: APIPrefix + "/jobs", handle: (*API).handleListJobs},
		{method: "POST", pattern: APIPrefix + "/jobs", handle: (*API).handleStartJob},
		{method: "GET", pattern: APIPrefix + "/jobs/{id}", handle: (*API).handleGetJob},
		{method: "GET", pattern: APIPrefix + "/jobs/{id}/events", handle: (*API).handleJobEvents},
		{method: "POST", pattern: APIPrefix + "/jobs/{id}/cancel", handle: (*API).handleCancelJob},
		{method: "POST", pattern: APIPrefix + "/jobs/{id}/pause", handle: (*API).handlePauseJob},
		{method: "POST", pattern: APIPrefix + "/jobs/{id}/resume", handle: (*API).handleResumeJob},
		{method: "POST", pattern: APIPrefix + "/jobs/{id}/remediate", handle: (*API).handleRemediate},

		{method: "GET", pattern: APIPrefix + "/schedules", handle: (*API).handleListSchedules},
		{method: "POST", pattern: APIPrefix + "/schedules", handle: (*API).handleAddSchedule},
		{method: "GET", pattern: APIPrefix + "/schedules/{name}", handle: (*API).handleGetSchedule},
		{method: "DELETE", pattern: APIPrefix + "/schedules/{name}", handle: (*API).handleRemoveSchedule},
		{method: "POST", pattern: APIPrefix + "/schedules/{name}/run", handle: (*API).handleRunSchedule},
		{method: "GET", pattern: APIPrefix + "/schedules/{name}/prune-preview", handle: (*API).handlePrunePreview},
		{method: "GET", pattern: APIPrefix + "/rpo", handle: (*API).handleRPO},

		{method: "GET", pattern: APIPrefix + "/catalog/export", handle: (*API).handleExport},

		{method: "GET", pattern: APIPrefix + "/audit", handle: (*API).handleAudit},

		{method: "GET", pattern: APIPrefix + "/users", handle: (*API).handleListUsers},
		{method: "POST", pattern: APIPrefix + "/users", handle: (*API).handleAddUser},
		{method: "POST", pattern: APIPrefix + "/users/{name}/password", handle: (*API).handleSetPassword},
		{method: "POST", pattern: APIPrefix + "/users/{name}/disable", handle: (*API).handleDisableUser},
		{method: "GET", pattern: APIPrefix + "/users/{name}/notifications", handle: (*API).handleGetNotifications},
		{method: "PUT", pattern: APIPrefix + "/users/{name}/notifications", handle: (*API).handlePutNotifications},
		{method: "POST", pattern: APIPrefix + "/users/{name}/notifications/test", handle: (*API).handleTestNotifications},
		{method: "GET", pattern: APIPrefix + "/me/notifications", handle: (*API).handleGetNotifications},
		{method: "PUT", pattern: APIPrefix + "/me/notifications", handle: (*API).handlePutNotifications},
		{method: "POST", pattern: APIPrefix + "/me/notifications/test", handle: (*API).handleTestNotifications},
		{method: "GET", pattern: APIPrefix + "/notifications/undeliverable", handle: (*API).handleUndeliverable},
		{method: "GET", pattern: APIPrefix + "/stats", handle: (*API).handleStats},
		{method: "PUT", pattern: APIPrefix + "/stats/retention", handle: (*API).handleStatsRetention},
		{method: "POST", pattern: APIPrefix + "/owners/{user}/assign", handle: (*API).handleAssignOwner},
		{method: "POST", pattern: APIPrefix + "/owners/{user}/unassign", handle: (*API).handleUnassignOwner},
		{method: "POST", pattern: APIPrefix + "/tokens", handle: (*API).handleCreateToken},
	}
}

// Handler returns the HTTP API: /healthz and /metrics are open, everything
// under /api/v1 needs an "Authorization: Bearer <token>" header with a token
// from the installation's token file (see Tokens).
func (s *API) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes() {
		h := s.wrap(rt)
		mux.Handle(rt.method+" "+rt.pattern, h)
	}
	// Anything else under the API prefix is a JSON 404, not the mux's text one.
	mux.Handle(APIPrefix+"/", s.wrap(route{handle: func(_ *API, _ *service.Session, w http.ResponseWriter, r *http.Request) error {
		if allow := allowedMethods(r.URL.Path); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			return &apiError{status: http.StatusMethodNotAllowed, msg: fmt.Sprintf("%s does not take %s; use %s", r.URL.Path, r.Method, strings.Join(allow, " or "))}
		}
		return errNotFound("no API route %s %s; see docs/api.md for the routes and their methods", r.Method, r.URL.Path)
	}}))
	return mux
}

// allowedMethods lists the methods the route table serves for path.
func allowedMethods(path string) []string {
	var out []string
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for _, rt := range routes() {
		ps := strings.Split(strings.Trim(rt.pattern, "/"), "/")
		if len(ps) != len(segs) {
			continue
		}
		match := true
		for i := range ps {
			if !strings.HasPrefix(ps[i], "{") && ps[i] != segs[i] {
				match = false
				break
			}
		}
		if match && !contains(out, rt.method) {
			out = append(out, rt.method)
		}
	}
	return out
}

// wrap adds authentication, panic safety and error rendering to a handler.
func (s *API) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("api: handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p)
				writeError(w, &apiError{status: http.StatusInternalServerError, msg: "internal error in the server; see its log"})
			}
		}()
		var ss *service.Session
		if !rt.open && !(rt.local && (s.metricsOpen || httpguard.FromLoopback(r))) {
			id, err := s.authenticate(r)
			if err != nil {
				s.auditRefused(r, rt, err)
				s.writeErr(w, r, err)
				return
			}
			ss = s.svc.As(id)
		}
		if err := rt.handle(s, ss, w, r); err != nil {
			s.writeErr(w, r, err)
			return
		}
		s.log.Debug("api", "method", r.Method, "path", r.URL.Path, "elapsed", time.Since(start))
	})
}

// authenticate returns who sent r, from its bearer token. Every failed
// authentication passes here, so that one wrapper can throttle them.
func (s *API) authenticate(r *http.Request) (service.Identity, error) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return service.Identity{}, &service.Error{Kind: service.ErrUnauthenticated, Msg: "missing API token: send the header \"Authorization: Bearer <token>\" with a token from fleetvault token create"}
	}
	id, err := s.svc.Authenticate(s.tokens, token, r.RemoteAddr)
	if err != nil {
		return id, err
	}
	s.log.Debug("api: authenticated", "user", id.User, "role", id.Role)
	return id, nil
}

// auditRefused records a write refused for want of valid credentials: such
// a request never reaches the service, so the API writes its audit entry.
func (s *API) auditRefused(r *http.Request, rt route, err error) {
	if r.Method == http.MethodGet || !errors.Is(err, service.ErrUnauthenticated) || rt.pattern == "" {
		return
	}
	path := r.URL.Path
	if len(path) > maxAuditPath { // anyone can send this: keep the log's entries small
		path = path[:maxAuditPath] + "..."
	}
	if aerr := s.svc.AuditUnauthenticated(r.RemoteAddr, r.Method+" "+rt.pattern, path); aerr != nil {
		s.log.Error("audit: append failed", "path", r.URL.Path, "err", aerr)
	}
}

// apiError is an error with an HTTP status and a message for a person.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errBadRequest(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func errNotFound(format string, args ...any) error {
	return &apiError{status: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

func errConflict(format string, args ...any) error {
	return &apiError{status: http.StatusConflict, msg: fmt.Sprintf(format, args...)}
}

// statusOf is the one mapping of the service's kinds of error to statuses.
var statusOf = []struct {
	kind   error
	status int
}{
	{service.ErrUnauthenticated, http.StatusUnauthorized},
	{service.ErrForbidden, http.StatusForbidden},
	{service.ErrNotFound, http.StatusNotFound},
	{service.ErrInvalid, http.StatusBadRequest},
	{service.ErrConflict, http.StatusConflict},
	{service.ErrUnprocessable, http.StatusUnprocessableEntity},
}

// Status is the HTTP status of one of the service's kinds of error
// (statusOf), and false for any other error: the web view (package bui)
// answers with the same statuses as the API.
func Status(err error) (int, bool) {
	for _, k := range statusOf {
		if errors.Is(err, k.kind) {
			return k.status, true
		}
	}
	return 0, false
}

func (s *API) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		if status, ok := Status(err); ok {
			writeError(w, &apiError{status: status, msg: err.Error()})
			return
		}
		s.log.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = &apiError{status: http.StatusInternalServerError, msg: err.Error()}
	}
	writeError(w, ae)
}

func writeError(w http.ResponseWriter, ae *apiError) {
	msg := ae.msg
	if msg == "" {
		msg = http.StatusText(ae.status)
	}
	if ae.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fleetvault"`)
	}
	writeJSON(w, ae.status, apiclient.ErrorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // keep <token> readable; the body is never HTML
	_ = enc.Encode(v)        // the client went away: nothing to do
}

// readBody reads a request body up to limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, &apiError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body is larger than %d bytes; send less at once", limit)}
	}
	if err != nil {
		return nil, errBadRequest("read the request body: %v", err)
	}
	return b, nil
}

// decodeJSON decodes a JSON body into v strictly: unknown fields and
// trailing data are refused, naming what was wrong.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := readBody(w, r, maxJSONBody)
	if err != nil {
		return err
	}
	return decodeStrict(b, v)
}

func decodeStrict(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return errBadRequest("the request body is empty; send a JSON document")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errBadRequest("bad JSON body: %s", describeJSONError(err))
	}
	if dec.More() {
		return errBadRequest("bad JSON body: unexpected data after the JSON document")
	}
	return nil
}

// describeJSONError turns a decoding error into a sentence naming the field.
func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "the document"
		}
		return fmt.Sprintf("field %q must be %s, not a JSON %s", field, jsonTypeName(te.Type.Kind().String()), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Sprintf("unknown field %s; check its spelling against docs/api.md", strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the document ends early"
	}
	return err.Error()
}

func jsonTypeName(kind string) string {
	switch kind {
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	}
	return "a number"
}

func (s *API) handleHealthz(_ *service.Session, w http.ResponseWriter, _ *http.Request) error {
	recs, err := s.engine.Jobs()
	if err != nil {
		return fmt.Errorf("read the job journal: %w", err)
	}
	running := 0
	for _, r := range recs {
		if !r.State.Final() {
			running++
		}
	}
	h := apiclient.Health{Status: "ok", Broker: s.brokerURL, Jobs: running, DRMode: s.svc.Catalog().DRMode()}
	h.UptimeSec = int64(time.Since(s.started).Seconds())
	writeJSON(w, http.StatusOK, h)
	return nil
}

// handleMetrics serves the Prometheus metrics: fleet-wide counts, so a data
// owner's token may not read them from another address (403).
func (s *API) handleMetrics(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	if ss != nil && ss.Identity().Role == service.RoleOwner {
		return &service.Error{Kind: service.ErrForbidden, Msg: "the metrics cover the whole installation: a data owner's token may not read them; ask an administrator, or read them from the server's own host"}
	}
	if s.metrics == nil {
		return errNotFound("this server has no metrics")
	}
	s.metrics.ServeHTTP(w, r)
	return nil
}
