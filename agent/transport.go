package agent

import (
	"context"
	"errors"

	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// Transport is the server side of the protocol: it carries a request to the
// device an identifier names and brings back its answer. The MQTT and CoAP
// implementations pass the same conformance suite (agent/agenttest).
type Transport interface {
	// Do sends req to the device that target names and waits for its response,
	// until ctx ends. Do sets req.V, req.ID (a fresh correlation id) and
	// req.Ident (target in canonical form). A device's refusal is a Response
	// with Err set and a nil error; the error is for the exchange itself:
	// ErrTimeout, ErrUnreachable, or a wrapped ErrMalformed for an answer that
	// cannot be decoded. Do is safe for concurrent use.
	Do(ctx context.Context, target identifiers.ID, req *Request) (*Response, error)
	// Close stops the transport; outstanding calls end with an error.
	Close() error
}

// PresenceNotifier is implemented by transports that learn when a device comes
// online (an MQTT device announces itself on connect). fn is called with the
// device's id; it must not block.
type PresenceNotifier interface {
	OnOnline(fn func(device string))
}

// Errors of an exchange, checked with errors.Is.
var (
	ErrTimeout     = errors.New("no answer before the deadline")
	ErrUnreachable = errors.New("device unreachable")
	ErrClosed      = errors.New("transport closed")
)

// Device is what a device maker implements to take part in backups and group
// restores. Its methods may be called concurrently.
type Device interface {
	// Tag returns what the device says about itself.
	Tag(ctx context.Context) (tagmatch.Tag, error)
	// Settings returns the device's current settings document.
	Settings(ctx context.Context) (Settings, error)
	// Apply makes settings the device's current settings, or refuses them with
	// an error (wrap ErrRejected when the settings are not valid for this device).
	Apply(ctx context.Context, settings Settings) error
}

// ErrRejected is wrapped by Device.Apply when the device refuses settings.
var ErrRejected = errors.New("settings rejected by the device")

type jobKey struct{}

// WithJob returns ctx carrying the id of the job a write belongs to. The
// Handler passes it to Device.Apply, so a device can log which job set its
// settings.
func WithJob(ctx context.Context, job string) context.Context {
	return context.WithValue(ctx, jobKey{}, job)
}

// JobOf returns the job id WithJob put in ctx, or "".
func JobOf(ctx context.Context) string {
	job, _ := ctx.Value(jobKey{}).(string)
	return job
}

type deviceKey struct{}

// WithDevice returns ctx naming the device (its id) an exchange is meant
// for. A transport that authenticates the device at the far end, such as
// CoAP over DTLS with a key per device, needs it: the identifier names only
// an address.
func WithDevice(ctx context.Context, device string) context.Context {
	return context.WithValue(ctx, deviceKey{}, device)
}

// DeviceOf returns the device id WithDevice put in ctx, or "".
func DeviceOf(ctx context.Context) string {
	device, _ := ctx.Value(deviceKey{}).(string)
	return device
}
