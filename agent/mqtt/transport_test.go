package mqtt

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/agenttest"
	"github.com/fleetvault/fleetvault/identifiers"
)

// fakeClient stands in for paho: Publish hands each request to answer, which
// may deliver messages to the transport (or not), and completes the publish
// token with pubErr.
type fakeClient struct {
	paho.Client // unused methods panic
	t           *Transport
	pubErr      error
	answer      func(topic string, req *agent.Request)
	disconnects int
	mu          sync.Mutex
}

func (c *fakeClient) Publish(topic string, _ byte, _ bool, payload any) paho.Token {
	req, err := agent.DecodeRequest(payload.([]byte))
	if err != nil {
		panic(err)
	}
	if c.answer != nil {
		c.answer(topic, req)
	}
	return doneToken{c.pubErr}
}

func (c *fakeClient) Disconnect(uint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.disconnects++
}

type doneToken struct{ err error }

var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (d doneToken) Wait() bool                     { return true }
func (d doneToken) WaitTimeout(time.Duration) bool { return true }
func (d doneToken) Done() <-chan struct{}          { return closedCh }
func (d doneToken) Error() error                   { return d.err }

type fakeMessage struct {
	paho.Message
	topic   string
	payload []byte
}

func (m fakeMessage) Topic() string   { return m.topic }
func (m fakeMessage) Payload() []byte { return m.payload }

func newFakeTransport(t *testing.T) (*Transport, *fakeClient) {
	t.Helper()
	tr, err := newTransport(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeClient{t: tr}
	tr.client = c
	tr.ready.Store(true) // as after the connection and the subscription
	tr.startWorkers()
	t.Cleanup(func() { tr.Close() })
	return tr, c
}

// deliver hands the transport a response as if it came from the broker.
func deliver(t *testing.T, tr *Transport, topic string, r *agent.Response) {
	b, err := agent.EncodeResponse(r)
	if err != nil {
		t.Error(err)
		return
	}
	tr.deliver(topic, b)
}

func TestDoPaths(t *testing.T) {
	target := identifiers.ReadTag("mqtt", "d1", 0)
	tests := []struct {
		name    string
		answer  func(tr *Transport, topic string, req *agent.Request)
		pubErr  error
		timeout time.Duration
		wantErr error
		dropped string
	}{
		{name: "answered", answer: func(tr *Transport, topic string, req *agent.Request) {
			go deliver(t, tr, agent.ResponseTopic("d1"), &agent.Response{ID: req.ID, Device: "d1"})
		}},
		{name: "answered before the publish completes", answer: func(tr *Transport, topic string, req *agent.Request) {
			deliver(t, tr, agent.ResponseTopic("d1"), &agent.Response{ID: req.ID, Device: "d1"})
		}},
		{name: "publish fails", pubErr: errors.New("not connected"), wantErr: agent.ErrUnreachable},
		{name: "no answer", timeout: 20 * time.Millisecond, wantErr: agent.ErrTimeout},
		{name: "answer from another device's topic", timeout: 20 * time.Millisecond, wantErr: agent.ErrTimeout, dropped: DropWrongDevice,
			answer: func(tr *Transport, topic string, req *agent.Request) {
				deliver(t, tr, agent.ResponseTopic("d2"), &agent.Response{ID: req.ID, Device: "d2"})
			}},
		{name: "presence is not an answer", timeout: 20 * time.Millisecond, wantErr: agent.ErrTimeout,
			answer: func(tr *Transport, topic string, req *agent.Request) {
				deliver(t, tr, agent.ResponseTopic("d1"), &agent.Response{Device: "d1"})
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, c := newFakeTransport(t)
			c.pubErr = tc.pubErr
			if tc.answer != nil {
				c.answer = func(topic string, req *agent.Request) {
					if topic != agent.RequestTopic("d1") || req.Ident != target.String() || req.V != agent.Version {
						t.Errorf("published %+v on %s", req, topic)
					}
					tc.answer(tr, topic, req)
				}
			}
			ctx := t.Context()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			resp, err := tr.Do(ctx, target, &agent.Request{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Do: %v, %+v; want %v", err, resp, tc.wantErr)
				}
			} else if err != nil || resp.Device != "d1" {
				t.Fatalf("Do: %v, %+v", err, resp)
			}
			if tc.dropped != "" && tr.Stats().Dropped[tc.dropped] != 1 {
				t.Errorf("dropped %v, want one %s", tr.Stats().Dropped, tc.dropped)
			}
			for i := range tr.shards {
				if len(tr.shards[i].calls) != 0 {
					t.Fatalf("shard %d still holds %d calls", i, len(tr.shards[i].calls))
				}
			}
		})
	}
}

func TestLateAnswerDropped(t *testing.T) {
	tr, c := newFakeTransport(t)
	var id string
	c.answer = func(_ string, req *agent.Request) { id = req.ID }
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := tr.Do(ctx, identifiers.ReadTag("mqtt", "d1", 0), &agent.Request{}); !errors.Is(err, agent.ErrTimeout) {
		t.Fatalf("Do: %v", err)
	}
	deliver(t, tr, agent.ResponseTopic("d1"), &agent.Response{ID: id, Device: "d1"})
	deliver(t, tr, agent.ResponseTopic("d1"), &agent.Response{ID: "other-prefix-1", Device: "d1"})
	if got := tr.Stats().Dropped[DropUnknownID]; got != 2 {
		t.Errorf("unknown-id drops %d, want 2", got)
	}
}

func TestCloseEndsCalls(t *testing.T) {
	tr, c := newFakeTransport(t)
	published := make(chan struct{})
	c.answer = func(string, *agent.Request) { close(published) }
	done := make(chan error, 1)
	go func() {
		_, err := tr.Do(t.Context(), identifiers.ReadTag("mqtt", "d1", 0), &agent.Request{})
		done <- err
	}()
	<-published
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, agent.ErrClosed) {
		t.Errorf("waiting call: %v, want ErrClosed", err)
	}
	tr.Close()
	if c.disconnects != 1 {
		t.Errorf("disconnected %d times, want once", c.disconnects)
	}
}

// TestCorrelationUnderLoad: many calls to many devices, answered out of
// order from other goroutines, each gets its own answer.
func TestCorrelationUnderLoad(t *testing.T) {
	tr, c := newFakeTransport(t)
	c.answer = func(topic string, req *agent.Request) {
		dev, _ := agent.ParseRequestTopic(topic)
		go deliver(t, tr, agent.ResponseTopic(dev), &agent.Response{ID: req.ID, Device: dev, Tag: agenttest.Tag(len(dev))})
	}
	var wg sync.WaitGroup
	for i := range 500 {
		wg.Go(func() {
			dev := []string{"a", "bb", "ccc", "dddd"}[i%4]
			resp, err := tr.Do(t.Context(), identifiers.ReadTag("mqtt", dev, 0), &agent.Request{})
			if err != nil || resp.Device != dev || resp.Tag[4].Value != agenttest.Tag(len(dev))[4].Value {
				t.Errorf("call %d to %s: %v %+v", i, dev, err, resp)
			}
		})
	}
	wg.Wait()
	if st := tr.Stats(); st.Answered != 500 || st.Sent != 500 {
		t.Errorf("stats %+v", st)
	}
}

func FuzzOnMessage(f *testing.F) {
	ok, _ := agent.EncodeResponse(&agent.Response{ID: "x", Device: "d1"})
	f.Add("fleetvault/v1/d1/res", ok)
	f.Add("fleetvault/v1/d1/res", []byte{0xa0})
	f.Add("fleetvault/v1//res", []byte("junk"))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		tr, _ := newFakeTransport(t)
		tr.OnOnline(func(string) {})
		tr.deliver(topic, payload)
		st := tr.Stats()
		var dropped uint64
		for _, n := range st.Dropped {
			dropped += n
		}
		if st.Received != 1 || dropped+st.Presence != 1 || st.Answered != 0 {
			t.Fatalf("one message with no call waiting: %+v", st)
		}
	})
}

// TestMaxInFlight: with every slot taken by an unanswered call, the next
// call waits for one, and ends with its context.
func TestMaxInFlight(t *testing.T) {
	tr, c := newFakeTransport(t)
	tr.slots = make(chan struct{}, 2)
	var mu sync.Mutex
	var pending []*agent.Request
	c.answer = func(_ string, req *agent.Request) {
		mu.Lock()
		defer mu.Unlock()
		pending = append(pending, req)
	}
	results := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := tr.Do(t.Context(), identifiers.ReadTag("mqtt", "d1", 0), &agent.Request{})
			results <- err
		}()
	}
	waitFor(t, "two calls in flight", func() bool { mu.Lock(); defer mu.Unlock(); return len(pending) == 2 })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := tr.Do(ctx, identifiers.ReadTag("mqtt", "d1", 0), &agent.Request{}); !errors.Is(err, agent.ErrTimeout) {
		t.Fatalf("third call: %v, want ErrTimeout while waiting for a slot", err)
	}
	mu.Lock()
	if len(pending) != 2 {
		t.Errorf("the third call was published without a slot")
	}
	for _, req := range pending {
		deliver(t, tr, agent.ResponseTopic("d1"), &agent.Response{ID: req.ID, Device: "d1"})
	}
	mu.Unlock()
	for range 2 {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	// The slots are free again: the next call is published (and, unanswered, times out).
	ctx, cancel = context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	tr.Do(ctx, identifiers.ReadTag("mqtt", "d1", 0), &agent.Request{})
	mu.Lock()
	defer mu.Unlock()
	if len(pending) != 3 {
		t.Errorf("%d calls published, want 3 once the slots were released", len(pending))
	}
}

// TestWorkersDeliver: a message paho hands over reaches the waiting call
// through the decode workers.
func TestWorkersDeliver(t *testing.T) {
	tr, c := newFakeTransport(t)
	c.answer = func(_ string, req *agent.Request) {
		b, _ := agent.EncodeResponse(&agent.Response{ID: req.ID, Device: "d1"})
		go tr.onMessage(nil, fakeMessage{topic: agent.ResponseTopic("d1"), payload: b})
	}
	for range 50 {
		resp, err := tr.Do(t.Context(), identifiers.ReadTag("mqtt", "d1", 0), &agent.Request{})
		if err != nil || resp.Device != "d1" {
			t.Fatalf("Do: %v %+v", err, resp)
		}
	}
	tr.Close()
	tr.onMessage(nil, fakeMessage{topic: agent.ResponseTopic("d1"), payload: []byte{0xa0}}) // after Close: must not block
}
