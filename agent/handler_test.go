package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"

	"github.com/fleetvault/fleetvault/tagmatch"
)

// fakeDevice is an in-memory Device. Apply refuses settings holding "bad",
// and fails outright when failApply is set.
type fakeDevice struct {
	mu        sync.Mutex
	tag       tagmatch.Tag
	settings  Settings
	applies   int
	failApply error
}

func (d *fakeDevice) Tag(context.Context) (tagmatch.Tag, error) { return d.tag, nil }

func (d *fakeDevice) Settings(context.Context) (Settings, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.settings), nil
}

func (d *fakeDevice) Apply(_ context.Context, s Settings) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failApply != nil {
		return d.failApply
	}
	if _, bad := s["bad"]; bad {
		return fmt.Errorf("thermostat: %w: key bad is not a setting", ErrRejected)
	}
	d.settings = maps.Clone(s)
	d.applies++
	return nil
}

var testTag = tagmatch.Tag{{Key: tagmatch.KeyManufacturer, Value: "Acme Corp."}, {Key: tagmatch.KeyModel, Value: "xyz"}, {Key: tagmatch.KeyZone, Value: "South"}}

func newTestHandler(t *testing.T) (*Handler, *fakeDevice) {
	t.Helper()
	dev := &fakeDevice{tag: testTag, settings: Settings{"setpoint": 20}}
	return NewHandler("home1-climate", dev, HandlerOptions{Addresses: []string{"10.0.0.7:5683"}}), dev
}

func mustSettings(t testing.TB, s Settings) []byte {
	t.Helper()
	b, err := EncodeSettings(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandle(t *testing.T) {
	south := mustSettings(t, Settings{"setpoint": 23, "mode": "cool"})
	north := mustSettings(t, Settings{"setpoint": 19, "mode": "heat"})
	bad := mustSettings(t, Settings{"bad": true})
	current := mustSettings(t, Settings{"setpoint": 20})
	write := func(job string, s []byte) *Request {
		return &Request{V: Version, ID: "w", Ident: "mqtt://home1-climate?WRITE:SETTINGS?TAG+SETTINGS", Job: job, Settings: s, Hash: Hash(s)}
	}
	read := func(ident string) *Request { return &Request{V: Version, ID: "r", Ident: ident} }

	tests := []struct {
		name      string
		before    []*Request // sent first, answers ignored
		req       *Request
		failApply error
		wantCode  string
		wantTag   bool
		wantSet   []byte // settings the response carries
		wantHash  []byte
		applies   int
	}{
		{name: "read tag", req: read("mqtt://home1-climate?READ:SETTINGS?TAG"), wantTag: true},
		{name: "read settings", req: read("mqtt://home1-climate?READ:SETTINGS?SETTINGS"), wantSet: current, wantHash: Hash(current)},
		{name: "read tag and settings", req: read("home1-climate?READ:SETTINGS?TAG+SETTINGS"), wantTag: true, wantSet: current, wantHash: Hash(current)},
		{name: "legacy form", req: read("home1-climate?READ:SETTINGS:TAG"), wantTag: true},
		{name: "case-insensitive param and location", req: read("home1-climate?read:settings?tag"), wantTag: true},
		{name: "addressed by host and port", req: read("coap://10.0.0.7:5683?READ:SETTINGS?TAG"), wantTag: true},
		{name: "write", req: write("job-1", south), wantHash: Hash(south), applies: 1},
		{name: "idempotent repeat", before: []*Request{write("job-1", south)}, req: write("job-1", south), wantHash: Hash(south), applies: 1},
		{name: "conflict", before: []*Request{write("job-1", south)}, req: write("job-1", north), wantCode: CodeConflict, applies: 1},
		{name: "next job writes again", before: []*Request{write("job-1", south)}, req: write("job-2", north), wantHash: Hash(north), applies: 2},
		{name: "rejected", req: write("job-1", bad), wantCode: CodeRejected},
		{name: "apply fails", req: write("job-1", south), failApply: errors.New("flash worn out"), wantCode: CodeInternal},
		{name: "bad hash", req: &Request{V: Version, ID: "w", Ident: "home1-climate?WRITE:SETTINGS?TAG+SETTINGS", Job: "j", Settings: south, Hash: Hash(north)}, wantCode: CodeHashMismatch},
		{name: "write without job", req: write("", south), wantCode: CodeBadRequest},
		{name: "write without settings", req: write("job-1", nil), wantCode: CodeBadRequest},
		{name: "write of malformed settings", req: write("job-1", []byte{0x80}), wantCode: CodeBadRequest},
		{name: "version mismatch", req: &Request{V: 2, ID: "r", Ident: "home1-climate?READ:SETTINGS?TAG"}, wantCode: CodeVersion},
		{name: "no version", req: &Request{ID: "r", Ident: "home1-climate?READ:SETTINGS?TAG"}, wantCode: CodeVersion},
		{name: "not addressee", req: read("mqtt://home2-climate?READ:SETTINGS?TAG"), wantCode: CodeNotAddressee},
		{name: "other port", req: read("coap://10.0.0.7:5684?READ:SETTINGS?TAG"), wantCode: CodeNotAddressee},
		{name: "malformed identifier", req: read("home1-climate?READ"), wantCode: CodeBadRequest},
		{name: "unsupported location", req: read("home1-climate?READ:SETTINGS?/xyz"), wantCode: CodeUnsupported},
		{name: "unsupported param", req: read("home1-climate?READ:rman?TAG"), wantCode: CodeUnsupported},
		{name: "unsupported method", req: read("home1-climate?READ_SNAPSHOT:SETTINGS?TAG"), wantCode: CodeUnsupported},
		{name: "write of a read location", req: &Request{V: Version, ID: "w", Ident: "home1-climate?WRITE:SETTINGS?TAG", Job: "j", Settings: south, Hash: Hash(south)}, wantCode: CodeUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, dev := newTestHandler(t)
			ctx := t.Context()
			for _, r := range tc.before {
				if resp := h.Handle(ctx, r); resp.Err != nil {
					t.Fatalf("setup request: %v", resp.Err)
				}
			}
			dev.failApply = tc.failApply
			resp := h.Handle(ctx, tc.req)
			if resp.ID != tc.req.ID || resp.Device != "home1-climate" || len(resp.Caps) != 4 {
				t.Errorf("response id %q device %q caps %v; want id %q, device home1-climate, 4 caps", resp.ID, resp.Device, resp.Caps, tc.req.ID)
			}
			if tc.wantCode != "" {
				if resp.Err == nil || resp.Err.Code != tc.wantCode {
					t.Fatalf("got error %v, want code %s", resp.Err, tc.wantCode)
				}
				if resp.Err.Message == "" {
					t.Error("error without a message")
				}
				if resp.Tag != nil || resp.Settings != nil || resp.Hash != nil {
					t.Errorf("error response carries data: %+v", resp)
				}
			} else if resp.Err != nil {
				t.Fatalf("unexpected error %v", resp.Err)
			}
			if gotTag := len(resp.Tag) > 0; gotTag != tc.wantTag {
				t.Errorf("tag %v, want one: %v", resp.Tag, tc.wantTag)
			}
			if !bytes.Equal(resp.Settings, tc.wantSet) || !bytes.Equal(resp.Hash, tc.wantHash) {
				t.Errorf("settings %x hash %x, want %x and %x", resp.Settings, resp.Hash, tc.wantSet, tc.wantHash)
			}
			if dev.applies != tc.applies {
				t.Errorf("device applied %d times, want %d", dev.applies, tc.applies)
			}
			if _, err := EncodeResponse(resp); err != nil {
				t.Errorf("response does not encode: %v", err)
			}
		})
	}
}

func TestWriteAcksWhatTheDeviceHolds(t *testing.T) {
	// A device that normalises what it is given: the ack hash must be of what
	// it holds, so the server's end-to-end check catches the difference.
	h := NewHandler("d1", normalising{&fakeDevice{settings: Settings{}}}, HandlerOptions{})
	sent := mustSettings(t, Settings{"setpoint": 99})
	resp := h.Handle(t.Context(), &Request{V: Version, ID: "w", Ident: "d1?WRITE:SETTINGS?TAG+SETTINGS", Job: "j", Settings: sent, Hash: Hash(sent)})
	if resp.Err != nil {
		t.Fatal(resp.Err)
	}
	held := mustSettings(t, Settings{"setpoint": 30})
	if !bytes.Equal(resp.Hash, Hash(held)) {
		t.Errorf("ack hash %x, want hash of held settings %x", resp.Hash, Hash(held))
	}
}

// normalising caps the setpoint at 30.
type normalising struct{ *fakeDevice }

func (n normalising) Apply(ctx context.Context, s Settings) error {
	if v, ok := s["setpoint"].(uint64); ok && v > 30 {
		s = maps.Clone(s)
		s["setpoint"] = 30
	}
	return n.fakeDevice.Apply(ctx, s)
}

func TestHandleBytes(t *testing.T) {
	ok, _ := EncodeRequest(&Request{ID: "c1", Ident: "home1-climate?READ:SETTINGS?TAG"})
	noID, _ := EncodeRequest(&Request{Ident: "home1-climate?READ:SETTINGS?TAG"})
	// {"v": 1, "id": "c2", "ident": 7}: ident is not text.
	badField := cborHex(t, "a3 61 76 01 62 69 64 62 63 32 65 69 64 65 6e 74 07")
	// {"v": 1, "id": "c3", "pad": <MaxMessageBytes bytes>}
	oversized := append(cborHex(t, "a3 61 76 01 62 69 64 62 63 33 63 70 61 64 5a 00 10 00 00"), make([]byte, MaxMessageBytes)...)
	oversizedNoID := append(cborHex(t, "a1 63 70 61 64 5a 00 10 00 00"), make([]byte, MaxMessageBytes)...)
	// {"v": 1, "id": "c4", "ident": "home1-climate?READ:SETTINGS?TAG", "x-later": {"a": [1]}}
	unknown := append(cborHex(t, "a4 61 76 01 62 69 64 62 63 34 65 69 64 65 6e 74 78 1f"),
		append([]byte("home1-climate?READ:SETTINGS?TAG"), cborHex(t, "67 78 2d 6c 61 74 65 72 a1 61 61 81 01")...)...)

	tests := []struct {
		name     string
		msg      []byte
		wantDrop bool
		wantID   string
		wantCode string
	}{
		{name: "valid", msg: ok, wantID: "c1"},
		{name: "unknown fields ignored", msg: unknown, wantID: "c4"},
		{name: "malformed with correlation id", msg: badField, wantID: "c2", wantCode: CodeBadRequest},
		{name: "trailing garbage", msg: append(append([]byte{}, ok...), 0xff), wantID: "c1", wantCode: CodeBadRequest},
		{name: "oversized with correlation id", msg: oversized, wantID: "c3", wantCode: CodeTooLarge},
		{name: "oversized without correlation id", msg: oversizedNoID, wantDrop: true},
		{name: "malformed without correlation id", msg: []byte("hello"), wantDrop: true},
		{name: "empty", msg: nil, wantDrop: true},
		{name: "valid but no correlation id", msg: noID, wantDrop: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newTestHandler(t)
			out, answered := h.HandleBytes(t.Context(), tc.msg)
			if tc.wantDrop {
				if answered || out != nil {
					t.Fatalf("answered %x, want drop", out)
				}
				if h.Stats().Dropped != 1 {
					t.Errorf("dropped = %d, want 1", h.Stats().Dropped)
				}
				return
			}
			if !answered {
				t.Fatal("dropped, want an answer")
			}
			resp, err := DecodeResponse(out)
			if err != nil {
				t.Fatal(err)
			}
			if resp.ID != tc.wantID || resp.V != Version || resp.Device != "home1-climate" {
				t.Errorf("response %+v, want id %s", resp, tc.wantID)
			}
			switch {
			case tc.wantCode == "" && resp.Err != nil:
				t.Errorf("unexpected error %v", resp.Err)
			case tc.wantCode != "" && (resp.Err == nil || resp.Err.Code != tc.wantCode):
				t.Errorf("error %v, want code %s", resp.Err, tc.wantCode)
			}
		})
	}
}

func TestHello(t *testing.T) {
	h, _ := newTestHandler(t)
	resp, err := DecodeResponse(h.Hello())
	if err != nil {
		t.Fatal(err)
	}
	if resp.ID != "" || resp.Device != "home1-climate" || resp.V != Version || len(resp.Caps) != 4 || resp.Err != nil {
		t.Errorf("hello = %+v", resp)
	}
}

func TestHandlerConcurrentWritesApplyOnce(t *testing.T) {
	h, dev := newTestHandler(t)
	s := mustSettings(t, Settings{"setpoint": 22})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			resp := h.Handle(t.Context(), &Request{V: Version, ID: "w", Ident: "home1-climate?WRITE:SETTINGS?TAG+SETTINGS", Job: "j", Settings: s, Hash: Hash(s)})
			if resp.Err != nil {
				t.Error(resp.Err)
			}
		})
	}
	wg.Wait()
	if dev.applies != 1 || h.Stats().Applied != 1 || h.Stats().Requests != 16 {
		t.Errorf("applies %d, stats %+v; want one apply of 16 requests", dev.applies, h.Stats())
	}
}

func TestTopics(t *testing.T) {
	if got := RequestTopic("home1"); got != "fleetvault/v1/home1/req" {
		t.Errorf("RequestTopic = %q", got)
	}
	if got := ResponseTopic("home1"); got != "fleetvault/v1/home1/res" {
		t.Errorf("ResponseTopic = %q", got)
	}
	tests := []struct {
		topic, wantDev string
		ok             bool
	}{
		{"fleetvault/v1/home1-climate/res", "home1-climate", true},
		{"fleetvault/v1/10.0.0.7/res", "10.0.0.7", true},
		{"fleetvault/v1//res", "", false},
		{"fleetvault/v1/a/b/res", "", false},
		{"fleetvault/v1/home1/req", "", false},
		{"fleetvault/v2/home1/res", "", false},
		{"fleetvault/v1/+/res", "", false},
		{"fleetvault/v1/home 1/res", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.topic, func(t *testing.T) {
			dev, ok := ParseResponseTopic(tc.topic)
			if dev != tc.wantDev || ok != tc.ok {
				t.Errorf("ParseResponseTopic = %q, %v; want %q, %v", dev, ok, tc.wantDev, tc.ok)
			}
		})
	}
	if dev, ok := ParseRequestTopic(RequestTopic("x_1")); dev != "x_1" || !ok {
		t.Errorf("ParseRequestTopic = %q, %v", dev, ok)
	}
	if CheckDeviceID(string(make([]byte, MaxDeviceIDBytes+1))) == nil {
		t.Error("CheckDeviceID accepted an over-long id")
	}
}

func FuzzHandleBytes(f *testing.F) {
	s := []byte{0xa1, 0x61, 0x6b, 0x01}
	for _, r := range []*Request{
		{ID: "c1", Ident: "home1-climate?READ:SETTINGS?TAG"},
		{ID: "c2", Ident: "mqtt://home1-climate?READ:SETTINGS?SETTINGS"},
		{ID: "c3", Ident: "home1-climate?WRITE:SETTINGS?TAG+SETTINGS", Job: "j", Settings: s, Hash: Hash(s)},
		{ID: "c4", Ident: "other?READ:SETTINGS?TAG"},
	} {
		b, _ := EncodeRequest(r)
		f.Add(b)
	}
	f.Add([]byte{0xa1, 0x62, 0x69, 0x64, 0x61, 0x41})
	f.Fuzz(func(t *testing.T, msg []byte) {
		h, _ := newTestHandler(t)
		out, answered := h.HandleBytes(t.Context(), msg)
		if !answered {
			return
		}
		resp, err := DecodeResponse(out)
		if err != nil {
			t.Fatalf("answer %x does not decode: %v", out, err)
		}
		if resp.ID == "" || resp.Device != "home1-climate" {
			t.Fatalf("answer without correlation id or device: %+v", resp)
		}
	})
}

func BenchmarkHandleBytes(b *testing.B) {
	dev := &fakeDevice{tag: testTag, settings: Settings{"setpoint": 20, "mode": "auto"}}
	h := NewHandler("home1-climate", dev, HandlerOptions{})
	for _, loc := range []string{LocTag, LocSettings} {
		b.Run(loc, func(b *testing.B) {
			msg, _ := EncodeRequest(&Request{ID: "5f2a9c01e4b7-1", Ident: "mqtt://home1-climate?READ:SETTINGS?" + loc})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := h.HandleBytes(ctx, msg); !ok {
					b.Fatal("dropped")
				}
			}
		})
	}
}

// jobDevice records the job id its Apply was called with.
type jobDevice struct {
	fakeDevice
	job string
}

func (d *jobDevice) Apply(ctx context.Context, s Settings) error {
	d.job = JobOf(ctx)
	return d.fakeDevice.Apply(ctx, s)
}

func TestApplySeesTheJob(t *testing.T) {
	d := &jobDevice{}
	h := NewHandler("dev1", d, HandlerOptions{})
	b, _ := EncodeSettings(Settings{"a": 1})
	resp := h.Handle(context.Background(), &Request{V: Version, ID: "1", Ident: "mqtt://dev1?WRITE:SETTINGS?TAG+SETTINGS", Job: "job-42", Settings: b, Hash: Hash(b)})
	if resp.Err != nil {
		t.Fatal(resp.Err)
	}
	if d.job != "job-42" {
		t.Fatalf("Apply saw job %q", d.job)
	}
}

// panicDevice is a device maker's bug: its Apply panics.
type panicDevice struct{ fakeDevice }

func (d *panicDevice) Apply(context.Context, Settings) error { panic("nil map in firmware") }

func TestHandlerSurvivesAPanickingDevice(t *testing.T) {
	h := NewHandler("dev1", &panicDevice{}, HandlerOptions{})
	b, _ := EncodeSettings(Settings{"a": 1})
	write := &Request{V: Version, ID: "1", Ident: "mqtt://dev1?WRITE:SETTINGS?TAG+SETTINGS", Job: "j1", Settings: b, Hash: Hash(b)}
	resp := h.Handle(context.Background(), write)
	if resp.Err == nil || resp.Err.Code != CodeInternal || resp.ID != "1" {
		t.Fatalf("response %+v, want an internal error for request 1", resp)
	}
	// The handler still serves, and its write lock was released.
	resp = h.Handle(context.Background(), &Request{V: Version, ID: "2", Ident: "mqtt://dev1?READ:SETTINGS?SETTINGS"})
	if resp.Err != nil {
		t.Fatalf("after the panic: %v", resp.Err)
	}
	if resp = h.Handle(context.Background(), write); resp.Err == nil || resp.Err.Code != CodeInternal {
		t.Fatalf("second write: %+v", resp)
	}
}
