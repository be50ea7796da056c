package agenttest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
)

// memTransport carries requests to Handlers in the same process, through the
// same encode and decode as a network would. It checks the suite itself.
type memTransport struct {
	mu      sync.Mutex
	devices map[string]*agent.Handler
	closed  bool
	next    atomic.Uint64
}

var _ agent.Transport = (*memTransport)(nil)

func (m *memTransport) Do(ctx context.Context, target identifiers.ID, req *agent.Request) (*agent.Response, error) {
	m.mu.Lock()
	h, closed := m.devices[target.Address], m.closed
	m.mu.Unlock()
	if closed {
		return nil, agent.ErrClosed
	}
	if h == nil {
		return nil, fmt.Errorf("mem: %s: %w", target.Address, agent.ErrUnreachable)
	}
	req.ID, req.Ident = strconv.FormatUint(m.next.Add(1), 10), target.String()
	msg, err := agent.EncodeRequest(req)
	if err != nil {
		return nil, err
	}
	answer := make(chan []byte, 1)
	go func() {
		out, _ := h.HandleBytes(context.Background(), msg)
		answer <- out
	}()
	select {
	case out := <-answer:
		return agent.DecodeResponse(out)
	case <-ctx.Done():
		return nil, fmt.Errorf("mem: %w: %w", agent.ErrTimeout, ctx.Err())
	}
}

func (m *memTransport) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

type memEnv struct{ tr *memTransport }

func (e memEnv) Transport() agent.Transport { return e.tr }

func (e memEnv) AddDevice(t *testing.T, id string, dev agent.Device) identifiers.ID {
	if !slices.Contains(DeviceIDs(), id) {
		t.Errorf("the suite uses device id %s, which DeviceIDs does not list", id)
	}
	e.tr.mu.Lock()
	defer e.tr.mu.Unlock()
	e.tr.devices[id] = agent.NewHandler(id, dev, agent.HandlerOptions{})
	return identifiers.ID{Address: id}
}

func (e memEnv) Unreachable(t *testing.T) identifiers.ID {
	return identifiers.ID{Address: "nobody-home"}
}

func TestSuiteInMemory(t *testing.T) {
	Run(t, func(t *testing.T) Env { return memEnv{&memTransport{devices: map[string]*agent.Handler{}}} })
}

func TestMemDevice(t *testing.T) {
	d := NewMemDevice(Tag(1), agent.Settings{"a": 1})
	s, err := d.Settings(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s["a"] = 2 // a copy: the device is unchanged
	if again, _ := d.Settings(t.Context()); again["a"] != uint64(1) {
		t.Errorf("device settings changed through a returned copy: %v", again)
	}
	d.Reject("no")
	if err := d.Apply(t.Context(), agent.Settings{"a": 3}); err == nil || d.Applied() != 0 {
		t.Errorf("Apply after Reject: %v, applied %d", err, d.Applied())
	}
	d.Reject("")
	if err := d.Apply(t.Context(), agent.Settings{"a": 3}); err != nil || d.Applied() != 1 {
		t.Errorf("Apply: %v, applied %d", err, d.Applied())
	}
	release := d.Hold()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := d.Tag(ctx); err == nil {
		t.Error("held device answered a cancelled call")
	}
	release()
	release()
	if _, err := d.Tag(t.Context()); err != nil {
		t.Errorf("released device: %v", err)
	}
}
