package agenttest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// MemDevice is an in-memory agent.Device: a tag, a settings document, and an
// optional reason to refuse writes. It is safe for concurrent use.
type MemDevice struct {
	mu       sync.Mutex
	tag      tagmatch.Tag
	settings []byte // deterministic CBOR, so callers never share maps with it
	reject   string
	applied  int
	gate     chan struct{} // when set, calls wait for it to close
}

var _ agent.Device = (*MemDevice)(nil)

// NewMemDevice returns a device holding tag and settings. It panics if
// settings cannot be encoded, which only a test can cause.
func NewMemDevice(tag tagmatch.Tag, settings agent.Settings) *MemDevice {
	b, err := agent.EncodeSettings(settings)
	if err != nil {
		panic(fmt.Sprintf("agenttest: NewMemDevice: %v", err))
	}
	return &MemDevice{tag: slices.Clone(tag), settings: b}
}

// Tag returns the device's tag.
func (d *MemDevice) Tag(ctx context.Context) (tagmatch.Tag, error) {
	if err := d.wait(ctx); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.tag), nil
}

// Settings returns a copy of the device's settings.
func (d *MemDevice) Settings(ctx context.Context) (agent.Settings, error) {
	if err := d.wait(ctx); err != nil {
		return nil, err
	}
	return agent.DecodeSettings(d.SettingsBytes())
}

// SettingsBytes returns the deterministic encoding of the device's settings.
func (d *MemDevice) SettingsBytes() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.settings
}

// Apply makes settings current, or refuses them (wrapping agent.ErrRejected)
// after Reject.
func (d *MemDevice) Apply(ctx context.Context, settings agent.Settings) error {
	if err := d.wait(ctx); err != nil {
		return err
	}
	b, err := agent.EncodeSettings(settings)
	if err != nil {
		return fmt.Errorf("memdevice: %w: %v", agent.ErrRejected, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reject != "" {
		return fmt.Errorf("memdevice: %w: %s", agent.ErrRejected, d.reject)
	}
	d.settings = b
	d.applied++
	return nil
}

// Reject makes later writes fail with reason; "" accepts them again.
func (d *MemDevice) Reject(reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reject = reason
}

// Applied returns how many writes the device applied.
func (d *MemDevice) Applied() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applied
}

// Hold makes every later call wait until the returned release is called (or
// its context ends): a device that is slow to answer.
func (d *MemDevice) Hold() (release func()) {
	gate := make(chan struct{})
	d.mu.Lock()
	d.gate = gate
	d.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			if d.gate == gate {
				d.gate = nil
			}
			d.mu.Unlock()
			close(gate)
		})
	}
}

func (d *MemDevice) wait(ctx context.Context) error {
	d.mu.Lock()
	gate := d.gate
	d.mu.Unlock()
	if gate == nil {
		return nil
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
