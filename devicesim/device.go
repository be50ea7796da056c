package devicesim

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// Outcomes of a write, in WriteRecord.Outcome.
const (
	OutcomeApplied       = "applied"        // stored as sent
	OutcomeCorrupted     = "corrupted"      // stored with a corrupted value: the answered hash differs
	OutcomeRejected      = "rejected"       // refused by the device (reject fault)
	OutcomeRepeat        = "repeat"         // the same job again: a no-op success
	OutcomeRefused       = "refused"        // refused by the protocol handler (bad hash, conflict...)
	OutcomeRebootApplied = "reboot-applied" // the device rebooted without answering; the write had been applied
	OutcomeRebootLost    = "reboot-lost"    // the device rebooted without answering; the write was lost
)

// WriteRecord is the ground truth of one write a device received.
type WriteRecord struct {
	Job       string
	Sent      []byte // the hash the request carried
	Answered  []byte // the hash the device answered (nil when it did not answer)
	Applied   bool   // the device's settings changed to what was sent (or a corrupted copy)
	Corrupted bool
	Outcome   string // one of the Outcome constants
	Code      string // the error code answered, for refusals
	At        time.Time
}

// Device is one simulated device: it implements agent.Device, and keeps the
// ground truth of what it was sent and what it holds.
type Device struct {
	info DeviceInfo
	typ  *DeviceType
	h    *agent.Handler

	fleet *Fleet
	// inline is set for transports that call the Handler themselves (CoAP):
	// latency, reboots and the write log then happen in the Device methods.
	inline   bool
	onReboot func() // inline: take the device off the network

	mu            sync.Mutex
	settings      agent.Settings // never mutated in place: replaced
	log           []WriteRecord
	rng           *rand.Rand
	rebootPending bool
	lastCtx       context.Context // inline: the request already delayed
}

var _ agent.Device = (*Device)(nil)

func newDevice(p *planned, seed uint64, idx int, logger *slog.Logger) *Device {
	d := &Device{
		info:          p.info,
		typ:           p.typ,
		settings:      p.settings,
		rng:           rand.New(rand.NewPCG(seed^streamRuntime<<56, uint64(idx))),
		rebootPending: p.info.Faults.Reboot,
	}
	d.h = d.handler(nil, logger)
	return d
}

// handler returns the device's protocol handler, answering to its id and
// addresses, with the capability and identity faults applied.
func (d *Device) handler(addresses []string, logger *slog.Logger) *agent.Handler {
	id, opts := d.info.ID, agent.HandlerOptions{Addresses: addresses, Logger: logger}
	f := d.info.Faults
	switch {
	case f.NoCaps:
		opts.Caps = []string{}
	case f.ReadOnly:
		opts.Caps = []string{agent.CapReadTag, agent.CapReadSettings}
	}
	if f.WrongID {
		// It still takes requests addressed to its own id, but signs its
		// answers with another.
		id, opts.Addresses = d.info.ID+"-impostor", append(opts.Addresses, d.info.ID)
	}
	return agent.NewHandler(id, d, opts)
}

// Info returns what the fleet says about the device.
func (d *Device) Info() DeviceInfo { return d.info }

// Tag implements agent.Device.
func (d *Device) Tag(ctx context.Context) (tagmatch.Tag, error) {
	d.enter(ctx)
	return d.info.Tag, nil
}

// Settings implements agent.Device: the current settings, which callers must
// not modify. Use CurrentSettings for a copy.
func (d *Device) Settings(ctx context.Context) (agent.Settings, error) {
	d.enter(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.settings, nil
}

// CurrentSettings returns a deep copy of the device's current settings.
func (d *Device) CurrentSettings() agent.Settings {
	d.mu.Lock()
	s := d.settings
	d.mu.Unlock()
	b, err := agent.EncodeSettings(s)
	if err != nil {
		return nil
	}
	c, err := agent.DecodeSettings(b)
	if err != nil {
		return nil
	}
	return c
}

// SettingsHash returns the hash of the device's current settings, as the
// device would answer it.
func (d *Device) SettingsHash() []byte {
	d.mu.Lock()
	s := d.settings
	d.mu.Unlock()
	b, err := agent.EncodeSettings(s)
	if err != nil {
		return nil
	}
	return agent.Hash(b)
}

// Log returns the device's writes, oldest first.
func (d *Device) Log() []WriteRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]WriteRecord(nil), d.log...)
}

// writeNote carries what Apply did back to the caller of Handler.Handle.
type writeNote struct {
	called, rejected, corrupted bool
}

type noteKey struct{}

// Apply implements agent.Device, with the reject and corrupt faults.
func (d *Device) Apply(ctx context.Context, s agent.Settings) error {
	note, _ := ctx.Value(noteKey{}).(*writeNote)
	if note == nil {
		if d.inline {
			return d.applyInline(ctx, s)
		}
		note = &writeNote{}
	}
	note.called = true
	if d.info.Faults.Reject {
		note.rejected = true
		return fmt.Errorf("%w: simulated refusal by %s", agent.ErrRejected, d.info.ID)
	}
	if d.info.Faults.Corrupt {
		s = corrupt(s)
		note.corrupted = true
	}
	d.mu.Lock()
	d.settings = s
	d.mu.Unlock()
	return nil
}

// enter delays an inline transport's request once, by the device's latency.
// A request's Handler calls may reach the Device more than once (Apply, then
// Settings); the CoAP layer gives each request its own context, so the first
// call with a new context is the one that waits.
func (d *Device) enter(ctx context.Context) {
	if !d.inline {
		return
	}
	d.mu.Lock()
	first := d.lastCtx != ctx
	d.lastCtx = ctx
	d.mu.Unlock()
	if !first {
		return
	}
	d.fleet.requests.Add(1)
	if delay := d.delay(); delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
}

// applyInline is Apply for transports that call the Handler themselves: the
// write log is kept here (without the job id, which the Device is not told),
// and a reboot takes the device off the network before it can answer.
func (d *Device) applyInline(ctx context.Context, s agent.Settings) error {
	d.enter(ctx)
	d.fleet.writes.Add(1)
	sent := hashOf(s)
	if d.takeReboot() {
		rec := WriteRecord{Job: agent.JobOf(ctx), Sent: sent, Outcome: OutcomeRebootLost, At: time.Now()}
		d.mu.Lock()
		if d.rng.Float64() < d.typ.Faults.Reboot.Applied {
			d.settings = s
			rec.Applied, rec.Outcome = true, OutcomeRebootApplied
		}
		d.log = append(d.log, rec)
		d.mu.Unlock()
		d.onReboot()
		return fmt.Errorf("%s is rebooting", d.info.ID)
	}
	rec := WriteRecord{Job: agent.JobOf(ctx), Sent: sent, At: time.Now()}
	var err error
	switch {
	case d.info.Faults.Reject:
		rec.Outcome, rec.Code = OutcomeRejected, agent.CodeRejected
		err = fmt.Errorf("%w: simulated refusal by %s", agent.ErrRejected, d.info.ID)
	case d.info.Faults.Corrupt:
		s = corrupt(s)
		rec.Applied, rec.Corrupted, rec.Outcome = true, true, OutcomeCorrupted
	default:
		rec.Applied, rec.Outcome = true, OutcomeApplied
	}
	if rec.Applied {
		rec.Answered = hashOf(s)
	}
	d.mu.Lock()
	if rec.Applied {
		d.settings = s
	}
	d.log = append(d.log, rec)
	d.mu.Unlock()
	return err
}

func hashOf(s agent.Settings) []byte {
	b, err := agent.EncodeSettings(s)
	if err != nil {
		return nil
	}
	return agent.Hash(b)
}

// corrupt returns a copy of s with one value changed, as a flipped bit in
// flash would: the first key in order, so the damage is reproducible.
func corrupt(s agent.Settings) agent.Settings {
	c := make(agent.Settings, len(s)+1)
	keys := make([]string, 0, len(s))
	for k, v := range s {
		c[k] = v
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		c["corrupted"] = true
		return c
	}
	sort.Strings(keys)
	k := keys[0]
	switch v := c[k].(type) {
	case int64:
		c[k] = v ^ 1
	case uint64:
		c[k] = v ^ 1
	case float64:
		c[k] = v + 0.5
	case string:
		c[k] = v + "\x00"
	case bool:
		c[k] = !v
	default:
		c[k] = "corrupted"
	}
	return c
}

// action says what the transport does after a request.
type action int

const (
	actReply  action = iota // send the response
	actIgnore               // send nothing (dropped, or undecodable)
	actReboot               // go offline without answering, then come back
)

// handle answers one request, applying the drop and reboot faults and
// recording writes. It does not sleep: latency is the transport's job.
func (d *Device) handle(ctx context.Context, msg []byte) ([]byte, action) {
	if d.info.Faults.Drop {
		return nil, actIgnore
	}
	req, err := agent.DecodeRequest(msg)
	if err != nil || req.ID == "" {
		resp, ok := d.h.HandleBytes(ctx, msg) // its error answers, or its drop
		if !ok {
			return nil, actIgnore
		}
		return resp, actReply
	}
	isWrite := req.Job != "" || len(req.Settings) > 0
	if isWrite {
		d.fleet.writes.Add(1)
	}
	if isWrite && d.takeReboot() {
		d.rebootWrite(req)
		return nil, actReboot
	}
	var note writeNote
	if isWrite {
		ctx = context.WithValue(ctx, noteKey{}, &note)
	}
	resp := d.h.Handle(ctx, req)
	if isWrite {
		d.record(req, resp, note)
	}
	b, err := agent.EncodeResponse(resp)
	if err != nil {
		resp, ok := d.h.HandleBytes(ctx, msg)
		if !ok {
			return nil, actIgnore
		}
		return resp, actReply
	}
	return b, actReply
}

func (d *Device) takeReboot() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.rebootPending
	d.rebootPending = false
	return r
}

// rebootWrite applies (or loses) a write the device reboots on, by chance.
func (d *Device) rebootWrite(req *agent.Request) {
	rec := WriteRecord{Job: req.Job, Sent: req.Hash, Outcome: OutcomeRebootLost, At: time.Now()}
	d.mu.Lock()
	apply := d.rng.Float64() < d.typ.Faults.Reboot.Applied
	d.mu.Unlock()
	if apply {
		if s, err := agent.DecodeSettings(req.Settings); err == nil {
			d.mu.Lock()
			d.settings = s
			d.mu.Unlock()
			rec.Applied, rec.Outcome = true, OutcomeRebootApplied
		}
	}
	d.mu.Lock()
	d.log = append(d.log, rec)
	d.mu.Unlock()
}

func (d *Device) record(req *agent.Request, resp *agent.Response, note writeNote) {
	rec := WriteRecord{Job: req.Job, Sent: req.Hash, Answered: resp.Hash, At: time.Now()}
	switch {
	case resp.Err != nil:
		rec.Code = resp.Err.Code
		rec.Outcome = OutcomeRefused
		if note.rejected {
			rec.Outcome = OutcomeRejected
		}
	case !note.called:
		rec.Outcome = OutcomeRepeat
	case note.corrupted:
		rec.Applied, rec.Corrupted, rec.Outcome = true, true, OutcomeCorrupted
	default:
		rec.Applied, rec.Outcome = true, OutcomeApplied
	}
	d.mu.Lock()
	d.log = append(d.log, rec)
	d.mu.Unlock()
}

// delay returns how long the device waits before answering.
func (d *Device) delay() time.Duration {
	f := &d.typ.Faults
	dist := f.Latency
	if d.info.Faults.Slow {
		dist = f.Slow.Latency
	}
	if dist.IsZero() {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return dist.Sample(d.rng)
}

// rebootDown returns how long a reboot keeps the device offline.
func (d *Device) rebootDown() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return max(d.typ.Faults.Reboot.Down.Sample(d.rng), 10*time.Millisecond)
}

// Hello is the presence announcement the device sends on connect.
func (d *Device) Hello() []byte { return d.h.Hello() }
