package grouprestore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// memCatalog is an in-memory Catalog for engine tests.
type memCatalog struct {
	mu        sync.Mutex
	pieces    map[string]Piece
	groups    map[string][]string // backup group -> piece ids
	content   map[string][]byte
	restores  map[string]RestoreRecord // job/device -> record
	next      int
	failStore atomic.Bool
	stored    map[string]NewPiece   // piece id -> what was stored (its job, type, client)
	storeErr  atomic.Pointer[error] // when set, Store stores nothing and fails with it
	// lateErr, when set, makes Store commit and then fail with it, as a
	// write whose commit reached the disk but whose fsync failed.
	lateErr atomic.Pointer[error]
	// holdAfterStore makes Store commit and then wait until its context
	// ends, as a process killed between the catalog's commit and the journal's.
	holdAfterStore atomic.Bool
}

func newMemCatalog() *memCatalog {
	return &memCatalog{pieces: map[string]Piece{}, groups: map[string][]string{}, content: map[string][]byte{}, restores: map[string]RestoreRecord{}, stored: map[string]NewPiece{}}
}

var _ Catalog = (*memCatalog)(nil)

func (c *memCatalog) Candidates(_ context.Context, group string) ([]Piece, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	newest := map[string]Piece{}
	for _, id := range c.groups[group] {
		newest[c.pieces[id].Client] = c.pieces[id] // ids ascend with time
	}
	var out []Piece
	for _, p := range newest {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (c *memCatalog) Piece(_ context.Context, id string) (Piece, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pieces[id]
	if !ok {
		return Piece{}, fmt.Errorf("piece %s not found", id)
	}
	return p, nil
}

func (c *memCatalog) Content(_ context.Context, hash string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.content[hash]
	if !ok {
		return nil, fmt.Errorf("content %s not found", hash)
	}
	return b, nil
}

func (c *memCatalog) Store(ctx context.Context, ps []NewPiece) ([]Piece, error) {
	out, err := c.store(ps)
	if err != nil {
		return nil, err
	}
	if err := c.lateErr.Load(); err != nil {
		return nil, *err
	}
	if c.holdAfterStore.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return out, nil
}

func (c *memCatalog) store(ps []NewPiece) ([]Piece, error) {
	if c.failStore.Load() {
		return nil, errors.New("disk full")
	}
	if err := c.storeErr.Load(); err != nil {
		return nil, *err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Piece, len(ps))
	for i, np := range ps {
		c.next++
		h := hex.EncodeToString(agent.Hash(np.Settings))
		p := Piece{ID: fmt.Sprintf("p%06d", c.next), Client: np.Client, Tag: np.Tag, Hash: h}
		c.pieces[p.ID] = p
		c.groups[np.Group] = append(c.groups[np.Group], p.ID)
		c.content[h] = np.Settings
		c.stored[p.ID] = np
		out[i] = p
	}
	return out, nil
}

func (c *memCatalog) JobPiece(_ context.Context, job, client, typ string, _ time.Time) (Piece, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best Piece
	for id, np := range c.stored {
		if np.Job == job && np.Client == client && np.Type == typ && id > best.ID {
			best = c.pieces[id]
		}
	}
	return best, best.ID != "", nil
}

// jobPieces counts the pieces of type typ a job stored, by client.
func (c *memCatalog) jobPieces(job, typ string) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := map[string]int{}
	for _, np := range c.stored {
		if np.Job == job && np.Type == typ {
			n[np.Client]++
		}
	}
	return n
}

func (c *memCatalog) RecordRestores(_ context.Context, rs []RestoreRecord) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range rs {
		c.restores[r.Job+"/"+r.Device] = r
	}
	return nil
}

// add stores a backed-up piece directly.
func (c *memCatalog) add(t *testing.T, group, client string, tag tagmatch.Tag, s agent.Settings) Piece {
	t.Helper()
	b, err := agent.EncodeSettings(s)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := c.Store(context.Background(), []NewPiece{{Client: client, Group: group, Type: "settings", Tag: tag, Settings: b}})
	if err != nil {
		t.Fatal(err)
	}
	return ps[0]
}

// memDirectory is an in-memory Directory.
type memDirectory map[string][]Target

func (d memDirectory) Members(_ context.Context, group string) ([]Target, error) {
	ts, ok := d[group]
	if !ok {
		return nil, fmt.Errorf("no group %q", group)
	}
	return ts, nil
}

// testDevice is a device with ground truth: every settings document applied.
type testDevice struct {
	mu       sync.Mutex
	tag      tagmatch.Tag
	settings agent.Settings
	applied  []string // hex hashes of settings applied, in order
	reject   bool
	corrupt  bool
}

var _ agent.Device = (*testDevice)(nil)

func (d *testDevice) Tag(context.Context) (tagmatch.Tag, error) { return d.tag, nil }

func (d *testDevice) Settings(context.Context) (agent.Settings, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := agent.Settings{}
	for k, v := range d.settings {
		out[k] = v
	}
	return out, nil
}

func (d *testDevice) Apply(_ context.Context, s agent.Settings) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reject {
		return fmt.Errorf("%w: setpoint out of range", agent.ErrRejected)
	}
	b, _ := agent.EncodeSettings(s)
	d.applied = append(d.applied, hex.EncodeToString(agent.Hash(b)))
	d.settings = s
	if d.corrupt {
		d.settings = agent.Settings{"corrupted": true}
	}
	return nil
}

func (d *testDevice) current() agent.Settings {
	s, _ := d.Settings(context.Background())
	return s
}

// loopTransport delivers requests to in-process handlers through the real
// codec: requests and responses are encoded and decoded as on the wire.
type loopTransport struct {
	mu       sync.Mutex
	handlers map[string]*agent.Handler
	offline  map[string]bool
	delay    map[string]time.Duration
	failN    map[string]int // the next N requests to the device time out
	seq      atomic.Uint64
	calls    atomic.Int64
	online   func(string)
}

func newLoopTransport() *loopTransport {
	return &loopTransport{handlers: map[string]*agent.Handler{}, offline: map[string]bool{}, delay: map[string]time.Duration{}, failN: map[string]int{}}
}

var (
	_ agent.Transport        = (*loopTransport)(nil)
	_ agent.PresenceNotifier = (*loopTransport)(nil)
)

func (l *loopTransport) OnOnline(fn func(string)) { l.online = fn }

func (l *loopTransport) Do(ctx context.Context, target identifiers.ID, req *agent.Request) (*agent.Response, error) {
	l.calls.Add(1)
	req.ID = strconv.FormatUint(l.seq.Add(1), 10)
	req.Ident = target.String()
	l.mu.Lock()
	h := l.handlers[target.Address]
	off := l.offline[target.Address]
	delay := l.delay[target.Address]
	fail := l.failN[target.Address] > 0
	if fail {
		l.failN[target.Address]--
	}
	l.mu.Unlock()
	if h == nil || off || fail {
		<-ctx.Done()
		return nil, agent.ErrTimeout
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, agent.ErrTimeout
		}
	}
	b, err := agent.EncodeRequest(req)
	if err != nil {
		return nil, err
	}
	out, ok := h.HandleBytes(ctx, b)
	if !ok {
		return nil, errors.New("dropped")
	}
	return agent.DecodeResponse(out)
}

func (l *loopTransport) Close() error { return nil }

func (l *loopTransport) setOffline(id string, off bool) {
	l.mu.Lock()
	l.offline[id] = off
	l.mu.Unlock()
	if !off && l.online != nil {
		l.online(id)
	}
}

// fleet is a test world: devices, their transport, a catalog and a directory.
type fleet struct {
	t       *testing.T
	tr      *loopTransport
	cat     *memCatalog
	dir     memDirectory
	devices map[string]*testDevice
	journal string
}

func newFleet(t *testing.T) *fleet {
	return &fleet{t: t, tr: newLoopTransport(), cat: newMemCatalog(), dir: memDirectory{}, devices: map[string]*testDevice{}, journal: t.TempDir() + "/jobs.db"}
}

func (f *fleet) device(group, id string, tag tagmatch.Tag, s agent.Settings) *testDevice {
	d := &testDevice{tag: tag, settings: s}
	f.devices[id] = d
	f.tr.handlers[id] = agent.NewHandler(id, d, agent.HandlerOptions{})
	f.dir[group] = append(f.dir[group], Target{ID: id, Ident: identifiers.ID{Scheme: "mqtt", Address: id}})
	return d
}

func (f *fleet) engine() *Engine {
	f.t.Helper()
	e, err := New(Options{JournalPath: f.journal, CreateJournal: true, Catalog: f.cat, Directory: f.dir, Transports: map[string]agent.Transport{"mqtt": f.tr}})
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

func climate(zone string) tagmatch.Tag {
	return tagmatch.Tag{{Key: "manufacturer", Value: "Acme Corp."}, {Key: "product", Value: "climate control"}, {Key: "model", Value: "xyz"}, {Key: "zone", Value: zone}}
}

func wait(t *testing.T, j *Job) Progress {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := j.Wait(ctx)
	if err != nil {
		t.Fatalf("job %s did not end: %v (progress %+v)", j.ID(), err, p)
	}
	return p
}

// checkFor polls cond until it holds or the deadline passes.
func checkFor(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
