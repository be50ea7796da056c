package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fleetvault/fleetvault/identifiers"
)

// jobMemory is how many recent jobs a Handler remembers for idempotent writes.
const jobMemory = 32

// Capabilities returns the capabilities a Handler serves, in a new slice.
func Capabilities() []string {
	return []string{CapReadTag, CapReadSettings, CapWriteSettings, CapIdempotentJob}
}

// WriteCapabilities returns, in a new slice, the capabilities a server needs a
// device to announce before it writes to it (agent-protocol.md section 9):
// without them a write could not be retried safely.
func WriteCapabilities() []string {
	return []string{CapWriteSettings, CapIdempotentJob}
}

// HandlerOptions tune a Handler. The zero value is usable.
type HandlerOptions struct {
	// Addresses are further identifier addresses this device answers to besides
	// its id, e.g. "127.0.0.1:5683" for a CoAP device (host, or host:port).
	Addresses []string
	// Caps are the capabilities the device announces in every response. nil
	// announces Capabilities(); a non-nil empty slice announces none (the
	// response then has no caps). The Handler serves every request whatever
	// it announces: this is for devices that serve less, and for tests of a
	// server's obedience to section 9 of the protocol.
	Caps   []string
	Logger *slog.Logger
}

// HandlerStats counts what a Handler refused or dropped.
type HandlerStats struct {
	Requests uint64 // requests answered
	Errors   uint64 // answered with an error response
	Dropped  uint64 // dropped: undecodable with no correlation id
	Applied  uint64 // settings applied (idempotent repeats not counted)
}

// Handler is the device side of the protocol, independent of transport: it
// decodes a request, checks it is the addressee, calls the Device and encodes
// the answer. Transports (MQTT, CoAP, the simulator's lean client) feed it bytes
// or decoded requests. It is safe for concurrent use.
type Handler struct {
	id        string
	dev       Device
	addresses map[string]bool
	caps      []string
	log       *slog.Logger

	mu   sync.Mutex // guards jobs, and serialises writes so a job applies once
	jobs []jobRecord

	requests, errs, dropped, applied atomic.Uint64
}

type jobRecord struct {
	job  string
	hash []byte // hash of the settings the request carried
	ack  []byte // hash of what the device held after applying
}

// NewHandler returns the handler for device id (see CheckDeviceID), which
// answers requests by calling dev.
func NewHandler(id string, dev Device, opts HandlerOptions) *Handler {
	h := &Handler{id: id, dev: dev, addresses: map[string]bool{id: true}, caps: Capabilities(), log: opts.Logger}
	if opts.Caps != nil {
		h.caps = slices.Clone(opts.Caps)
	}
	for _, a := range opts.Addresses {
		h.addresses[a] = true
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h
}

// ID returns the device id the handler answers for.
func (h *Handler) ID() string { return h.id }

// Stats returns the handler's counters.
func (h *Handler) Stats() HandlerStats {
	return HandlerStats{Requests: h.requests.Load(), Errors: h.errs.Load(), Dropped: h.dropped.Load(), Applied: h.applied.Load()}
}

// Hello returns the presence announcement a device sends when it comes online:
// a Response with an empty correlation id, carrying its id and capabilities.
func (h *Handler) Hello() []byte {
	b, err := EncodeResponse(&Response{Device: h.id, Caps: h.caps})
	if err != nil {
		panic("agent: encode hello: " + err.Error()) // two strings and a list of strings always encode
	}
	return b
}

// HandleBytes decodes a request, handles it and encodes the response. It
// reports false when the message is dropped: it could not be decoded far
// enough to find a correlation id, so there is nobody to answer. An oversized
// or malformed request that has one is answered with CodeTooLarge or
// CodeBadRequest.
func (h *Handler) HandleBytes(ctx context.Context, msg []byte) ([]byte, bool) {
	req, err := DecodeRequest(msg)
	if err != nil {
		id := scanID(msg)
		if id == "" {
			h.dropped.Add(1)
			h.log.Debug("agent: dropped undecodable request", "device", h.id, "err", err)
			return nil, false
		}
		code := CodeBadRequest
		if len(msg) > MaxMessageBytes {
			code = CodeTooLarge
		}
		return h.encode(h.fail(&Response{ID: id}, code, err.Error())), true
	}
	if req.ID == "" {
		h.dropped.Add(1)
		h.log.Debug("agent: dropped request without correlation id", "device", h.id)
		return nil, false
	}
	return h.encode(h.Handle(ctx, req)), true
}

func (h *Handler) encode(r *Response) []byte {
	b, err := EncodeResponse(r)
	if err != nil {
		// Only a device returning an unencodable tag could cause this.
		b, _ = EncodeResponse(h.fail(&Response{ID: r.ID}, CodeInternal, "encode response: "+err.Error()))
	}
	return b
}

// Handle answers one decoded request. It always returns a response.
func (h *Handler) Handle(ctx context.Context, req *Request) (out *Response) {
	resp := &Response{ID: req.ID, Device: h.id, Caps: h.caps}
	// A Device is the device maker's code: if it panics, the request gets an
	// internal error and the agent keeps serving.
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("agent: the device's code panicked", "device", h.id, "id", req.ID, "panic", fmt.Sprint(p))
			out = h.fail(&Response{ID: req.ID, Device: h.id, Caps: h.caps}, CodeInternal, fmt.Sprintf("the device failed: %v", p))
		}
	}()
	if req.V != Version {
		return h.fail(resp, CodeVersion, fmt.Sprintf("protocol version %d not spoken; this device speaks %d", req.V, Version))
	}
	id, err := identifiers.Parse(req.Ident)
	if err != nil {
		return h.fail(resp, CodeBadRequest, err.Error())
	}
	if !h.isAddressee(id) {
		return h.fail(resp, CodeNotAddressee, fmt.Sprintf("identifier names %q, this device is %q", id.HostPort(), h.id))
	}
	if !strings.EqualFold(id.Param(0), ParamSettings) {
		return h.fail(resp, CodeUnsupported, fmt.Sprintf("%s:%s is not served: the first param must be %s", id.Method, strings.Join(id.Params, ","), ParamSettings))
	}
	read := id.Method == MethodRead
	switch {
	case read && strings.EqualFold(id.Location, LocTag):
		return h.read(ctx, resp, true, false)
	case read && strings.EqualFold(id.Location, LocSettings):
		return h.read(ctx, resp, false, true)
	case read && strings.EqualFold(id.Location, LocWrite):
		// READ:SETTINGS?TAG+SETTINGS: the tag and the settings in one round
		// trip, so a restore's probe also yields its undo snapshot.
		return h.read(ctx, resp, true, true)
	case id.Method == MethodWrite && strings.EqualFold(id.Location, LocWrite):
		return h.write(ctx, req, resp)
	}
	return h.fail(resp, CodeUnsupported, fmt.Sprintf("%s:%s?%s is not served", id.Method, ParamSettings, id.Location))
}

// read answers the tag, the settings and their hash, or both.
func (h *Handler) read(ctx context.Context, resp *Response, tag, settings bool) *Response {
	if tag {
		t, err := h.dev.Tag(ctx)
		if err != nil {
			return h.fail(resp, CodeInternal, "read tag: "+err.Error())
		}
		resp.Tag = t
	}
	if settings {
		b, err := h.currentSettings(ctx)
		if err != nil {
			return h.fail(resp, CodeInternal, err.Error())
		}
		resp.Settings, resp.Hash = b, Hash(b)
	}
	h.requests.Add(1)
	return resp
}

// write applies a write, checking it in the order of agent-protocol.md
// section 6, so that the same faulty write gets the same code from every
// device: what is missing, then size, then the hash, then the document.
func (h *Handler) write(ctx context.Context, req *Request, resp *Response) *Response {
	switch {
	case req.Job == "":
		return h.fail(resp, CodeBadRequest, "a write must carry a job id")
	case len(req.Settings) == 0:
		return h.fail(resp, CodeBadRequest, "a write must carry settings")
	case len(req.Hash) == 0:
		return h.fail(resp, CodeBadRequest, "a write must carry the hash of its settings")
	case len(req.Settings) > MaxSettingsBytes:
		return h.fail(resp, CodeTooLarge, fmt.Sprintf("settings of %d bytes exceed the limit of %d", len(req.Settings), MaxSettingsBytes))
	case !bytes.Equal(Hash(req.Settings), req.Hash):
		return h.fail(resp, CodeHashMismatch, "the settings do not hash to the request's hash")
	}
	settings, err := DecodeSettings(req.Settings)
	if err != nil {
		return h.fail(resp, CodeBadRequest, err.Error())
	}
	if canon, err := EncodeSettings(settings); err != nil || !bytes.Equal(canon, req.Settings) {
		// Applied, they would be acknowledged with another hash than the
		// one sent, and the write would fail verification after changing
		// the device: refuse before changing anything.
		return h.fail(resp, CodeBadRequest, "the settings are not in core deterministic encoding (RFC 8949 section 4.2.1)")
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	for _, j := range h.jobs {
		if j.job != req.Job {
			continue
		}
		if !bytes.Equal(j.hash, req.Hash) {
			return h.fail(resp, CodeConflict, fmt.Sprintf("job %s already wrote other settings to this device", req.Job))
		}
		resp.Hash = j.ack // the same write again: a no-op success
		h.requests.Add(1)
		return resp
	}
	if err := h.dev.Apply(WithJob(ctx, req.Job), settings); err != nil {
		if errors.Is(err, ErrRejected) {
			return h.fail(resp, CodeRejected, err.Error())
		}
		return h.fail(resp, CodeInternal, "apply: "+err.Error())
	}
	// Answer with the hash of what the device now holds, not of what it was
	// sent: the server compares it with the catalog's hash, end to end.
	now, err := h.currentSettings(ctx)
	if err != nil {
		return h.fail(resp, CodeInternal, err.Error())
	}
	resp.Hash = Hash(now)
	h.jobs = append(h.jobs, jobRecord{job: req.Job, hash: req.Hash, ack: resp.Hash})
	if len(h.jobs) > jobMemory {
		h.jobs = h.jobs[1:]
	}
	h.applied.Add(1)
	h.requests.Add(1)
	return resp
}

func (h *Handler) currentSettings(ctx context.Context) ([]byte, error) {
	s, err := h.dev.Settings(ctx)
	if err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	b, err := EncodeSettings(s)
	if err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	return b, nil
}

func (h *Handler) isAddressee(id identifiers.ID) bool {
	return h.addresses[id.Address] || (id.Port != 0 && h.addresses[id.HostPort()])
}

func (h *Handler) fail(resp *Response, code, msg string) *Response {
	h.errs.Add(1)
	resp.Device, resp.Caps = h.id, h.caps
	resp.Tag, resp.Settings, resp.Hash = nil, nil, nil
	resp.Err = &Error{Code: code, Message: msg}
	h.log.Debug("agent: refused request", "device", h.id, "id", resp.ID, "code", code, "msg", msg)
	return resp
}
