package agenttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// Env is one transport under test and the devices it can reach.
type Env interface {
	// Transport returns the server side under test. A case may Close it; the
	// Env must tolerate that in its own cleanup.
	Transport() agent.Transport
	// AddDevice serves dev as device id over the transport until t ends, and
	// returns the base identifier that addresses it: scheme, address and port,
	// without method, params or location. It returns once the device can be
	// reached.
	AddDevice(t *testing.T, id string, dev agent.Device) identifiers.ID
	// Unreachable returns a base identifier that no device answers.
	Unreachable(t *testing.T) identifiers.ID
}

// callTimeout bounds every call the suite expects an answer to: generous, so
// a loaded machine does not fail the suite, yet a lost answer does.
const callTimeout = 15 * time.Second

// concurrentDevices is how many devices the Concurrent case calls at once.
const concurrentDevices = 20

// Run runs every conformance case, each as a subtest with a fresh Env.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	cases := []struct {
		name string
		fn   func(t *testing.T, env Env)
	}{
		{"ReadTag", testReadTag},
		{"ReadSettings", testReadSettings},
		{"ReadTagAndSettings", testReadTagAndSettings},
		{"Write", testWrite},
		{"IdempotentRepeat", testIdempotentRepeat},
		{"Conflict", testConflict},
		{"Rejected", testRejected},
		{"BadHash", testBadHash},
		{"WriteRefusals", testWriteRefusals},
		{"Settings1KiB", func(t *testing.T, env Env) { testLargeSettings(t, env, 1500) }},
		{"Settings100KiB", func(t *testing.T, env Env) { testLargeSettings(t, env, 100<<10) }},
		{"Unreachable", testUnreachable},
		{"Concurrent", testConcurrent},
		{"Cancel", testCancel},
		{"Close", testClose},
		{"VersionAndCapabilities", testVersionAndCaps},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newEnv(t)) })
	}
}

// DeviceIDs returns every device id the suite passes to AddDevice, for
// brokers whose credentials must be known before they start.
func DeviceIDs() []string {
	var ids []string
	for i := 1; i <= 12; i++ {
		ids = append(ids, fmt.Sprintf("home%04d-climate", i))
	}
	for i := range concurrentDevices {
		ids = append(ids, fmt.Sprintf("home%04d-climate", 100+i))
	}
	return ids
}

// Tag returns the tag of the i-th test device: Acme climate control, zone
// North for even i and South for odd, with its number as a free key.
func Tag(i int) tagmatch.Tag {
	zone := "North"
	if i%2 == 1 {
		zone = "South"
	}
	return tagmatch.Tag{
		{Key: tagmatch.KeyManufacturer, Value: "Acme Corp."},
		{Key: tagmatch.KeyProduct, Value: "climate control"},
		{Key: tagmatch.KeyModel, Value: "xyz"},
		{Key: tagmatch.KeyZone, Value: zone},
		{Key: "unit", Value: fmt.Sprint(i)},
	}
}

func startDevice(t *testing.T, env Env, id string, i int) (*MemDevice, identifiers.ID) {
	t.Helper()
	dev := NewMemDevice(Tag(i), agent.Settings{"setpoint": 20 + i, "mode": "auto"})
	return dev, env.AddDevice(t, id, dev)
}

func at(base identifiers.ID, location string) identifiers.ID {
	return identifiers.Settings(base.Scheme, base.Address, base.Port, location)
}

// do makes one call that must be answered, and checks what every answer carries.
func do(t *testing.T, env Env, base identifiers.ID, req *agent.Request, device string) *agent.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	target := at(base, identifiers.LocationTag)
	if req.Settings != nil || req.Job != "" {
		target = at(base, identifiers.LocationWrite)
	}
	return doAt(t, ctx, env, target, req, device)
}

func doAt(t *testing.T, ctx context.Context, env Env, target identifiers.ID, req *agent.Request, device string) *agent.Response {
	t.Helper()
	resp, err := env.Transport().Do(ctx, target, req)
	if err != nil {
		t.Fatalf("Do %s: %v", target, err)
	}
	if resp == nil {
		t.Fatalf("Do %s: nil response and nil error", target)
	}
	if resp.V != agent.Version || resp.Device != device || resp.ID == "" {
		t.Fatalf("Do %s: answer version %d device %q id %q; want version %d, device %q and a correlation id",
			target, resp.V, resp.Device, resp.ID, agent.Version, device)
	}
	if req.ID != resp.ID || req.V != agent.Version || req.Ident != target.String() {
		t.Fatalf("Do %s: request left with id %q (answer %q), version %d, ident %q", target, req.ID, resp.ID, req.V, req.Ident)
	}
	return resp
}

func wantOK(t *testing.T, resp *agent.Response) {
	t.Helper()
	if resp.Err != nil {
		t.Fatalf("device refused: %v", resp.Err)
	}
}

func wantCode(t *testing.T, resp *agent.Response, code string) {
	t.Helper()
	if resp.Err == nil || resp.Err.Code != code {
		t.Fatalf("answer error %v, want code %s", resp.Err, code)
	}
}

func writeReq(job string, settings []byte) *agent.Request {
	return &agent.Request{Job: job, Settings: settings, Hash: agent.Hash(settings)}
}

func encode(t *testing.T, s agent.Settings) []byte {
	t.Helper()
	b, err := agent.EncodeSettings(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testReadTag(t *testing.T, env Env) {
	_, base := startDevice(t, env, "home0001-climate", 1)
	resp := do(t, env, base, &agent.Request{}, "home0001-climate")
	wantOK(t, resp)
	if !slices.Equal(resp.Tag, Tag(1)) {
		t.Errorf("tag %v, want %v", resp.Tag, Tag(1))
	}
}

func testReadSettings(t *testing.T, env Env) {
	dev, base := startDevice(t, env, "home0002-climate", 2)
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	resp := doAt(t, ctx, env, at(base, identifiers.LocationSettings), &agent.Request{}, "home0002-climate")
	wantOK(t, resp)
	if want := dev.SettingsBytes(); !bytes.Equal(resp.Settings, want) || !bytes.Equal(resp.Hash, agent.Hash(want)) {
		t.Errorf("settings %x hash %x, want %x and its hash", resp.Settings, resp.Hash, want)
	}
	if len(resp.Tag) != 0 {
		t.Errorf("a settings read answered a tag too: %v", resp.Tag)
	}
}

func testReadTagAndSettings(t *testing.T, env Env) {
	dev, base := startDevice(t, env, "home0003-climate", 3)
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	// READ:SETTINGS?TAG+SETTINGS: a probe that also yields the undo snapshot.
	target := identifiers.ID{Scheme: base.Scheme, Address: base.Address, Port: base.Port, Method: identifiers.MethodRead,
		Params: []string{identifiers.ParamSettings}, Location: identifiers.LocationWrite}
	resp := doAt(t, ctx, env, target, &agent.Request{}, "home0003-climate")
	wantOK(t, resp)
	if !slices.Equal(resp.Tag, Tag(3)) || !bytes.Equal(resp.Settings, dev.SettingsBytes()) {
		t.Errorf("tag %v settings %x; want %v and %x", resp.Tag, resp.Settings, Tag(3), dev.SettingsBytes())
	}
}

func testWrite(t *testing.T, env Env) {
	dev, base := startDevice(t, env, "home0004-climate", 4)
	catalog := encode(t, agent.Settings{"setpoint": 23.5, "mode": "cool", "schedule": []any{"06:00", "22:30"}})
	resp := do(t, env, base, writeReq("job-1", catalog), "home0004-climate")
	wantOK(t, resp)
	if !bytes.Equal(resp.Hash, agent.Hash(catalog)) {
		t.Errorf("applied hash %x, want the catalog's %x", resp.Hash, agent.Hash(catalog))
	}
	if !bytes.Equal(dev.SettingsBytes(), catalog) || dev.Applied() != 1 {
		t.Errorf("device holds %x after %d applies, want %x after 1", dev.SettingsBytes(), dev.Applied(), catalog)
	}
}

func testIdempotentRepeat(t *testing.T, env Env) {
	dev, base := startDevice(t, env, "home0005-climate", 5)
	s := encode(t, agent.Settings{"setpoint": 19})
	first := do(t, env, base, writeReq("job-7", s), "home0005-climate")
	wantOK(t, first)
	again := do(t, env, base, writeReq("job-7", s), "home0005-climate")
	wantOK(t, again)
	if !bytes.Equal(first.Hash, again.Hash) || first.ID == again.ID {
		t.Errorf("repeat answered hash %x (first %x), ids %q and %q; want the same hash under fresh ids", again.Hash, first.Hash, again.ID, first.ID)
	}
	if dev.Applied() != 1 {
		t.Errorf("device applied %d times, want once", dev.Applied())
	}
}

func testConflict(t *testing.T, env Env) {
	dev, base := startDevice(t, env, "home0006-climate", 6)
	wantOK(t, do(t, env, base, writeReq("job-8", encode(t, agent.Settings{"setpoint": 19})), "home0006-climate"))
	wantCode(t, do(t, env, base, writeReq("job-8", encode(t, agent.Settings{"setpoint": 25})), "home0006-climate"), agent.CodeConflict)
	if dev.Applied() != 1 {
		t.Errorf("device applied %d times, want once", dev.Applied())
	}
}

func testRejected(t *testing.T, env Env) {
	dev, base := startDevice(t, env, "home0007-climate", 7)
	before := dev.SettingsBytes()
	dev.Reject("setpoint 99 is out of range")
	resp := do(t, env, base, writeReq("job-9", encode(t, agent.Settings{"setpoint": 99})), "home0007-climate")
	wantCode(t, resp, agent.CodeRejected)
	if !strings.Contains(resp.Err.Message, "out of range") {
		t.Errorf("refusal %q does not carry the device's reason", resp.Err.Message)
	}
	if !bytes.Equal(dev.SettingsBytes(), before) {
		t.Error("a refused write changed the device's settings")
	}
}

func testBadHash(t *testing.T, env Env) {
	dev, base := startDevice(t, env, "home0008-climate", 8)
	req := writeReq("job-10", encode(t, agent.Settings{"setpoint": 21}))
	req.Hash = agent.Hash([]byte("something else"))
	wantCode(t, do(t, env, base, req, "home0008-climate"), agent.CodeHashMismatch)
	if dev.Applied() != 0 {
		t.Error("a write whose hash did not match was applied")
	}
}

// testWriteRefusals: writes a device must refuse without changing anything
// (agent-protocol.md section 6), carried whole by the transport.
func testWriteRefusals(t *testing.T, env Env) {
	dev, base := startDevice(t, env, "home0008-climate", 8)
	// {"setpoint": 21, "mode": "cool"}: keys out of deterministic order.
	unsorted := []byte{0xa2, 0x68, 's', 'e', 't', 'p', 'o', 'i', 'n', 't', 0x15, 0x64, 'm', 'o', 'd', 'e', 0x64, 'c', 'o', 'o', 'l'}
	cases := []struct {
		name string
		req  *agent.Request
		code string
	}{
		{"without hash", &agent.Request{Job: "job-11", Settings: encode(t, agent.Settings{"setpoint": 21})}, agent.CodeBadRequest},
		{"settings not in deterministic encoding", &agent.Request{Job: "job-12", Settings: unsorted, Hash: agent.Hash(unsorted)}, agent.CodeBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, do(t, env, base, tc.req, "home0008-climate"), tc.code)
			if dev.Applied() != 0 {
				t.Error("a refused write was applied")
			}
		})
	}
}

func testLargeSettings(t *testing.T, env Env, size int) {
	dev, base := startDevice(t, env, "home0009-climate", 9)
	blob := make([]byte, size)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	s := encode(t, agent.Settings{"firmware-table": blob, "setpoint": 21})
	resp := do(t, env, base, writeReq("job-big", s), "home0009-climate")
	wantOK(t, resp)
	if !bytes.Equal(resp.Hash, agent.Hash(s)) {
		t.Errorf("applied hash %x, want %x", resp.Hash, agent.Hash(s))
	}
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	read := doAt(t, ctx, env, at(base, identifiers.LocationSettings), &agent.Request{}, "home0009-climate")
	wantOK(t, read)
	if !bytes.Equal(read.Settings, s) || !bytes.Equal(dev.SettingsBytes(), s) {
		t.Errorf("read back %d bytes, device holds %d, want %d", len(read.Settings), len(dev.SettingsBytes()), len(s))
	}
}

func testUnreachable(t *testing.T, env Env) {
	target := at(env.Unreachable(t), identifiers.LocationTag)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	resp, err := env.Transport().Do(ctx, target, &agent.Request{})
	if !errors.Is(err, agent.ErrTimeout) && !errors.Is(err, agent.ErrUnreachable) {
		t.Fatalf("Do to nobody: %v, %+v; want ErrTimeout or ErrUnreachable", err, resp)
	}
	if errors.Is(err, agent.ErrTimeout) && ctx.Err() == nil {
		t.Errorf("ErrTimeout before the deadline: %v", err)
	}
}

func testConcurrent(t *testing.T, env Env) {
	const devices, calls = concurrentDevices, 200
	bases := make([]identifiers.ID, devices)
	for i := range devices {
		_, bases[i] = startDevice(t, env, fmt.Sprintf("home%04d-climate", 100+i), 100+i)
	}
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for c := range calls {
		wg.Go(func() {
			i := c % devices
			loc := identifiers.LocationTag
			if c%3 == 0 {
				loc = identifiers.LocationSettings
			}
			resp, err := env.Transport().Do(ctx, at(bases[i], loc), &agent.Request{})
			if err == nil {
				err = checkConcurrent(resp, 100+i, loc)
			}
			if err != nil {
				errs <- fmt.Errorf("call %d to device %d: %w", c, i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func checkConcurrent(resp *agent.Response, i int, loc string) error {
	want := fmt.Sprintf("home%04d-climate", i)
	switch {
	case resp.Err != nil:
		return resp.Err
	case resp.Device != want:
		return fmt.Errorf("answered by %s, want %s", resp.Device, want)
	case loc == identifiers.LocationTag && !slices.Equal(resp.Tag, Tag(i)):
		return fmt.Errorf("tag %v, want %v", resp.Tag, Tag(i))
	case loc == identifiers.LocationSettings:
		want, _ := agent.EncodeSettings(agent.Settings{"setpoint": 20 + i, "mode": "auto"})
		if !bytes.Equal(resp.Settings, want) {
			return fmt.Errorf("settings %x, want %x", resp.Settings, want)
		}
	}
	return nil
}

func testCancel(t *testing.T, env Env) {
	dev, base := startDevice(t, env, "home0010-climate", 10)
	release := dev.Hold()
	defer release()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := env.Transport().Do(ctx, at(base, identifiers.LocationTag), &agent.Request{})
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) && !errors.Is(err, agent.ErrTimeout) {
			t.Fatalf("cancelled Do: %v; want context.Canceled or ErrTimeout", err)
		}
	case <-time.After(callTimeout):
		t.Fatal("Do did not return after its context was cancelled")
	}
	// The late answer must not confuse the next call.
	release()
	wantOK(t, do(t, env, base, &agent.Request{}, "home0010-climate"))
}

func testClose(t *testing.T, env Env) {
	_, base := startDevice(t, env, "home0011-climate", 11)
	wantOK(t, do(t, env, base, &agent.Request{}, "home0011-climate"))
	if err := env.Transport().Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	if _, err := env.Transport().Do(ctx, at(base, identifiers.LocationTag), &agent.Request{}); !errors.Is(err, agent.ErrClosed) {
		t.Errorf("Do after Close: %v, want ErrClosed", err)
	}
}

func testVersionAndCaps(t *testing.T, env Env) {
	_, base := startDevice(t, env, "home0012-climate", 12)
	resp := do(t, env, base, &agent.Request{}, "home0012-climate")
	wantOK(t, resp)
	for _, c := range []string{agent.CapReadTag, agent.CapReadSettings, agent.CapWriteSettings, agent.CapIdempotentJob} {
		if !slices.Contains(resp.Caps, c) {
			t.Errorf("capabilities %v lack %s", resp.Caps, c)
		}
	}
}
