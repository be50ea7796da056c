package agent

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetvault/fleetvault/tagmatch"
)

var update = flag.Bool("update", false, "rewrite docs/spec/vectors/agent.json from the vectors defined here")

const vectorsPath = "../docs/spec/vectors/agent.json"

// vector is one entry of docs/spec/vectors/agent.json.
type vector struct {
	Name        string          `json:"name"`
	Kind        string          `json:"kind"` // request, response, settings, exchange or device-id
	Hex         string          `json:"hex,omitempty"`
	Fields      json.RawMessage `json:"fields,omitempty"`       // what a valid message decodes to
	SHA256      string          `json:"sha256,omitempty"`       // settings: the hash of the bytes
	Error       string          `json:"error,omitempty"`        // invalid: "malformed"
	DeviceReply string          `json:"device_reply,omitempty"` // invalid request, exchange: an error code, "ok" or "drop"
	Device      string          `json:"device,omitempty"`       // exchange: the device id of the device answering
	Input       string          `json:"input,omitempty"`        // device-id: the id
	Valid       *bool           `json:"valid,omitempty"`        // device-id: whether it is a valid device id
	Note        string          `json:"note,omitempty"`
}

// wireRequest and wireResponse spell byte strings in hex, as the vectors do.
type wireRequest struct {
	V        uint64 `json:"v"`
	ID       string `json:"id"`
	Ident    string `json:"ident"`
	Job      string `json:"job,omitempty"`
	Settings string `json:"settings,omitempty"`
	Hash     string `json:"hash,omitempty"`
}

type wireResponse struct {
	V        uint64     `json:"v"`
	ID       string     `json:"id"`
	Dev      string     `json:"dev"`
	Caps     []string   `json:"caps,omitempty"`
	Tag      []wireAttr `json:"tag,omitempty"`
	Settings string     `json:"settings,omitempty"`
	Hash     string     `json:"hash,omitempty"`
	Err      *wireError `json:"err,omitempty"`
}

// wireAttr is a tag attribute as on the wire: {"k": key, "v": value}.
type wireAttr struct {
	K string `json:"k"`
	V string `json:"v"`
}

type wireError struct {
	Code string `json:"code"`
	Msg  string `json:"msg,omitempty"`
}

func toWireRequest(r *Request) wireRequest {
	return wireRequest{V: r.V, ID: r.ID, Ident: r.Ident, Job: r.Job, Settings: hex.EncodeToString(r.Settings), Hash: hex.EncodeToString(r.Hash)}
}

func toWireResponse(r *Response) wireResponse {
	w := wireResponse{V: r.V, ID: r.ID, Dev: r.Device, Caps: r.Caps, Settings: hex.EncodeToString(r.Settings), Hash: hex.EncodeToString(r.Hash)}
	for _, a := range r.Tag {
		w.Tag = append(w.Tag, wireAttr{K: a.Key, V: a.Value})
	}
	if r.Err != nil {
		w.Err = &wireError{Code: r.Err.Code, Msg: r.Err.Message}
	}
	return w
}

// buildVectors returns the vectors: valid ones encoded here, invalid ones by hand.
func buildVectors(t *testing.T) []vector {
	t.Helper()
	var vs []vector
	settingsDoc := Settings{"mode": "cool", "setpoint": 23.5, "schedule": []any{"06:00", "22:30"}, "fan": uint64(2), "eco": true}
	s := mustSettings(t, settingsDoc)
	addSettings := func(name string, doc Settings, note string) {
		b := mustSettings(t, doc)
		fields, _ := json.Marshal(doc)
		vs = append(vs, vector{Name: name, Kind: "settings", Hex: hex.EncodeToString(b), Fields: fields, SHA256: hex.EncodeToString(Hash(b)), Note: note})
	}
	addSettings("settings: thermostat", settingsDoc, "keys in core deterministic order: shorter first, then bytewise; 23.5 as the shortest float that holds it")
	addSettings("settings: empty", Settings{}, "")
	addSettings("settings: nested", Settings{"zones": map[string]any{"north": map[string]any{"setpoint": int64(-2)}}, "name": "Lobby ☀"}, "")

	addReq := func(name string, r *Request) {
		b, err := EncodeRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		fields, _ := json.Marshal(toWireRequest(r))
		vs = append(vs, vector{Name: name, Kind: "request", Hex: hex.EncodeToString(b), Fields: fields})
	}
	addReq("request: read tag", &Request{ID: "5f2a9c01e4b7-1", Ident: "mqtt://home0001-climate?READ:SETTINGS?TAG"})
	addReq("request: read settings", &Request{ID: "5f2a9c01e4b7-2", Ident: "mqtt://home0001-climate?READ:SETTINGS?SETTINGS"})
	addReq("request: read tag and settings", &Request{ID: "5f2a9c01e4b7-3", Ident: "coap://10.10.11.44:5683?READ:SETTINGS?TAG+SETTINGS"})
	addReq("request: write", &Request{ID: "5f2a9c01e4b7-4", Ident: "mqtt://home0001-climate?WRITE:SETTINGS?TAG+SETTINGS", Job: "restore-20261124-0001", Settings: s, Hash: Hash(s)})

	addResp := func(name string, r *Response) {
		b, err := EncodeResponse(r)
		if err != nil {
			t.Fatal(err)
		}
		fields, _ := json.Marshal(toWireResponse(r))
		vs = append(vs, vector{Name: name, Kind: "response", Hex: hex.EncodeToString(b), Fields: fields})
	}
	caps := Capabilities()
	tag := tagmatch.Tag{{Key: "manufacturer", Value: "Acme Corp."}, {Key: "product", Value: "climate control"}, {Key: "model", Value: "xyz"}, {Key: "zone", Value: "South"}}
	addResp("response: presence", &Response{Device: "home0001-climate", Caps: caps})
	addResp("response: tag", &Response{ID: "5f2a9c01e4b7-1", Device: "home0001-climate", Caps: caps, Tag: tag})
	addResp("response: settings", &Response{ID: "5f2a9c01e4b7-2", Device: "home0001-climate", Caps: caps, Settings: s, Hash: Hash(s)})
	addResp("response: applied", &Response{ID: "5f2a9c01e4b7-4", Device: "home0001-climate", Caps: caps, Hash: Hash(s)})
	addResp("response: conflict", &Response{ID: "5f2a9c01e4b7-4", Device: "home0001-climate", Caps: caps,
		Err: &Error{Code: CodeConflict, Message: "job restore-20261124-0001 already wrote other settings to this device"}})

	bad := func(kind, name, h, reply, note string) {
		vs = append(vs, vector{Name: name, Kind: kind, Hex: strings.ReplaceAll(h, " ", ""), Error: "malformed", DeviceReply: reply, Note: note})
	}
	bad("request", "malformed: not a map", "83 01 02 03", "drop", "no correlation id to answer to")
	bad("request", "malformed: version is text", "a3 61 76 61 31 62 69 64 62 63 31 65 69 64 65 6e 74 60", CodeBadRequest, `{"v": "1", "id": "c1", "ident": ""}: answered, the id is readable`)
	bad("request", "malformed: duplicate key", "a3 61 76 01 62 69 64 62 63 32 61 76 01", CodeBadRequest, "")
	bad("request", "malformed: indefinite-length map", "bf 61 76 01 62 69 64 62 63 33 ff", "drop", "indefinite lengths are forbidden, so the scan for the id stops at once")
	bad("request", "malformed: cbor tag", "a2 61 76 c1 01 62 69 64 62 63 34", CodeBadRequest, "tags are forbidden")
	bad("request", "malformed: trailing bytes", "a2 61 76 01 62 69 64 62 63 35 00", CodeBadRequest, "")
	bad("request", "malformed: truncated", "a3 61 76 01 62 69 64 62 63", "drop", "")
	bad("request", "malformed: invalid UTF-8 in ident", "a3 61 76 01 62 69 64 62 63 36 65 69 64 65 6e 74 62 ff fe", CodeBadRequest, "")
	bad("request", "malformed: too deep", "a3 61 76 01 62 69 64 62 63 37 61 78 "+strings.Repeat("a1 61 6b ", MaxNesting+1)+"01", CodeBadRequest, "an unknown field nested deeper than the limit is still refused")
	bad("response", "malformed: caps not an array", "a3 61 76 01 62 69 64 60 64 63 61 70 73 01", "", "")
	bad("settings", "malformed: not a map", "82 01 02", "", "")
	bad("settings", "malformed: integer key", "a1 01 02", "", "settings keys are text")
	bad("settings", "malformed: null", "f6", "", "")
	vs = append(vs, exchangeVectors(t)...)
	return append(vs, deviceIDVectors()...)
}

// exchangeVectors are requests that decode, with the code a device answers
// them with (agent-protocol.md sections 2, 6 and 9): writes the device must
// refuse, and requests where several errors apply and one must win.
func exchangeVectors(t *testing.T) []vector {
	const dev = "home0001-climate"
	s := mustSettings(t, Settings{"mode": "cool", "setpoint": 24})
	unsorted, _ := hex.DecodeString("a268736574706f696e741818646d6f646564636f6f6c") // {"setpoint": 24, "mode": "cool"}: longer key first
	long, _ := hex.DecodeString("a2646d6f646564636f6f6c68736574706f696e74190018")   // 24 as a two-byte integer
	half, _ := hex.DecodeString("a168736574706f696e74fb4037800000000000")           // 23.5 as a 64-bit float, not the shortest
	notMap := []byte{0x82, 0x01, 0x02}
	w := "mqtt://" + dev + "?WRITE:SETTINGS?TAG+SETTINGS"
	var vs []vector
	add := func(name, reply, note string, r *Request) {
		b, err := encMode.Marshal(r) // as given: v included, so that a wrong version can be sent
		if err != nil {
			t.Fatal(err)
		}
		fields, _ := json.Marshal(toWireRequest(r))
		vs = append(vs, vector{Name: name, Kind: "exchange", Hex: hex.EncodeToString(b), Fields: fields, Device: dev, DeviceReply: reply, Note: note})
	}
	add("exchange: write", "ok", "", &Request{V: 1, ID: "x1", Ident: w, Job: "j1", Settings: s, Hash: Hash(s)})
	add("exchange: write without hash", CodeBadRequest, "a write carries job, settings and hash (section 6, step 1)", &Request{V: 1, ID: "x2", Ident: w, Job: "j1", Settings: s})
	add("exchange: settings keys not in deterministic order", CodeBadRequest, "section 6, step 3: applied, they would be acknowledged with another hash", &Request{V: 1, ID: "x3", Ident: w, Job: "j1", Settings: unsorted, Hash: Hash(unsorted)})
	add("exchange: settings integer not in its shortest form", CodeBadRequest, "", &Request{V: 1, ID: "x4", Ident: w, Job: "j1", Settings: long, Hash: Hash(long)})
	add("exchange: settings float not in its shortest form", CodeBadRequest, "23.5 fits a half-precision float", &Request{V: 1, ID: "x5", Ident: w, Job: "j1", Settings: half, Hash: Hash(half)})
	add("exchange: missing job wins over a wrong hash", CodeBadRequest, "", &Request{V: 1, ID: "x6", Ident: w, Settings: s, Hash: Hash(notMap)})
	add("exchange: wrong hash wins over settings that are not a map", CodeHashMismatch, "", &Request{V: 1, ID: "x7", Ident: w, Job: "j1", Settings: notMap, Hash: Hash(s)})
	add("exchange: version wins over an identifier that does not parse", CodeVersion, "section 2: version, then identifier, then addressee, then what is asked", &Request{V: 2, ID: "x8", Ident: "not an identifier"})
	add("exchange: identifier that does not parse", CodeBadRequest, "", &Request{V: 1, ID: "x9", Ident: "not an identifier"})
	add("exchange: not-addressee wins over an unsupported location", CodeNotAddressee, "", &Request{V: 1, ID: "x10", Ident: "mqtt://home0002-climate?READ:SETTINGS?FIRMWARE"})
	add("exchange: device ids are compared exactly", CodeNotAddressee, "HOME0001-climate is another device id than home0001-climate", &Request{V: 1, ID: "x11", Ident: "mqtt://HOME0001-climate?READ:SETTINGS?TAG"})
	add("exchange: param and location compared without regard to case", "ok", "", &Request{V: 1, ID: "x12", Ident: "mqtt://" + dev + "?READ:settings?Tag"})
	add("exchange: unsupported location", CodeUnsupported, "", &Request{V: 1, ID: "x13", Ident: "mqtt://" + dev + "?READ:SETTINGS?FIRMWARE"})
	return vs
}

// deviceIDVectors are device ids and whether they are valid (agent-protocol.md
// section 1: an identifier address without brackets, at most 128 characters).
func deviceIDVectors() []vector {
	label := func(n int) string { return strings.Repeat("a", n) }
	var vs []vector
	add := func(id string, valid bool, note string) {
		vs = append(vs, vector{Name: fmt.Sprintf("device id: %q", id), Kind: "device-id", Input: id, Valid: &valid, Note: note})
	}
	add("home0001-climate", true, "")
	add("Home_1.climate-2", true, "letters of either case, digits, '-', '_', dot-separated labels")
	add("12345", true, "one all-digit label is a host name (a serial number)")
	add("10.0.0.7", true, "an IPv4 address")
	add(label(63), true, "a label of 63 characters")
	add(label(63)+"."+label(62)+".a", true, "128 characters, the longest device id")
	add("", false, "empty")
	add("1.2", false, "an all-digit first label followed by '.' must be an IPv4 address")
	add("010.1.1.1", false, "not an IPv4 address: leading zero")
	add("10.0.0.256", false, "")
	add(label(70), false, "a label is at most 63 characters")
	add(label(64), false, "")
	add(label(63)+"."+label(63)+".a", false, "129 characters: over the limit of 128 (a valid host name, but no device id)")
	add("a..b", false, "empty label")
	add(".a", false, "")
	add("a.", false, "")
	add("home 1", false, "")
	add("home/1", false, "an MQTT topic separator")
	add("home+", false, "an MQTT wildcard")
	add("home#", false, "an MQTT wildcard")
	add("süd", false, "ASCII only")
	add("[::1]", false, "IPv6 addresses cannot be device ids")
	return vs
}

func TestVectors(t *testing.T) {
	if *update {
		b, err := json.MarshalIndent(buildVectors(t), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.FromSlash(vectorsPath))
	if err != nil {
		t.Fatalf("%v (run go test ./agent -run TestVectors -update)", err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatalf("%s: %v", vectorsPath, err)
	}
	want := buildVectors(t)
	if len(vs) != len(want) {
		t.Errorf("%s has %d vectors, the tests define %d (run with -update)", vectorsPath, len(vs), len(want))
	}
	for i, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			if i < len(want) && (want[i].Hex != v.Hex || want[i].Name != v.Name) {
				t.Errorf("vector differs from the one defined in the tests (run with -update)")
			}
			b, err := hex.DecodeString(v.Hex)
			if err != nil {
				t.Fatal(err)
			}
			checkVector(t, v, b)
		})
	}
}

func checkVector(t *testing.T, v vector, b []byte) {
	t.Helper()
	var got any
	var err error
	switch v.Kind {
	case "request":
		var r *Request
		if r, err = DecodeRequest(b); err == nil {
			got = toWireRequest(r)
			again, _ := EncodeRequest(r)
			if !bytes.Equal(again, b) {
				t.Errorf("re-encodes as %x", again)
			}
		}
	case "response":
		var r *Response
		if r, err = DecodeResponse(b); err == nil {
			got = toWireResponse(r)
			again, _ := EncodeResponse(r)
			if !bytes.Equal(again, b) {
				t.Errorf("re-encodes as %x", again)
			}
		}
	case "settings":
		err = checkSettingsVector(t, v, b)
	case "exchange":
		checkExchange(t, v, b)
		return
	case "device-id":
		if err := CheckDeviceID(v.Input); (err == nil) != (v.Valid != nil && *v.Valid) {
			t.Errorf("CheckDeviceID(%q) = %v, vector says valid=%v", v.Input, err, *v.Valid)
		}
		return
	default:
		t.Fatalf("unknown kind %q", v.Kind)
	}
	if v.Error != "" {
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("decoded without the expected error %q: %v", v.Error, err)
		}
		if v.Kind == "request" {
			checkDeviceReply(t, v, b)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got != nil {
		checkFields(t, got, v.Fields)
	}
}

// checkFields compares what a message decoded to with a vector's fields, as JSON.
func checkFields(t *testing.T, got any, fields json.RawMessage) {
	t.Helper()
	gotJSON, _ := json.Marshal(got)
	var a, w any
	_ = json.Unmarshal(gotJSON, &a)
	_ = json.Unmarshal(fields, &w)
	if !reflect.DeepEqual(a, w) {
		t.Errorf("decodes to %s, want %s", gotJSON, fields)
	}
}

func checkSettingsVector(t *testing.T, v vector, b []byte) error {
	s, err := DecodeSettings(b)
	if err != nil {
		return err
	}
	again, err := EncodeSettings(s)
	if err != nil || !bytes.Equal(again, b) {
		t.Errorf("not in deterministic encoding: re-encodes as %x (%v)", again, err)
	}
	if h := hex.EncodeToString(Hash(b)); h != v.SHA256 {
		t.Errorf("sha256 %s, vector says %s", h, v.SHA256)
	}
	// The fields, read as JSON (integers as integers), encode to the same bytes.
	dec := json.NewDecoder(bytes.NewReader(v.Fields))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	fromJSON, err := EncodeSettings(fromJSONNumbers(doc).(map[string]any))
	if err != nil || !bytes.Equal(fromJSON, b) {
		t.Errorf("fields encode as %x (%v), want %x", fromJSON, err, b)
	}
	return nil
}

func fromJSONNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = fromJSONNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = fromJSONNumbers(e)
		}
	}
	return v
}

// checkExchange checks an exchange vector: the request decodes to its fields
// and re-encodes to its bytes, and the device answers it with its reply.
func checkExchange(t *testing.T, v vector, b []byte) {
	t.Helper()
	r, err := DecodeRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := encMode.Marshal(r); !bytes.Equal(again, b) {
		t.Errorf("re-encodes as %x", again)
	}
	checkFields(t, toWireRequest(r), v.Fields)
	dev := &fakeDevice{tag: testTag, settings: Settings{"setpoint": 20}}
	out, answered := NewHandler(v.Device, dev, HandlerOptions{}).HandleBytes(t.Context(), b)
	if !answered {
		t.Fatalf("device dropped the request, vector says %s", v.DeviceReply)
	}
	resp, err := DecodeResponse(out)
	if err != nil {
		t.Fatal(err)
	}
	got := "ok"
	if resp.Err != nil {
		got = resp.Err.Code
	}
	if got != v.DeviceReply {
		t.Errorf("device reply %s (%v), vector says %s", got, resp.Err, v.DeviceReply)
	}
	if v.DeviceReply != "ok" && dev.applies != 0 {
		t.Errorf("the device refused, yet applied the settings")
	}
}

func checkDeviceReply(t *testing.T, v vector, b []byte) {
	t.Helper()
	h, _ := newTestHandler(t)
	out, answered := h.HandleBytes(t.Context(), b)
	got := "drop"
	if answered {
		resp, err := DecodeResponse(out)
		if err != nil || resp.Err == nil {
			t.Fatalf("device answered %x (%v), want an error", out, err)
		}
		got = resp.Err.Code
	}
	if got != v.DeviceReply {
		t.Errorf("device reply %s, vector says %s", got, v.DeviceReply)
	}
}

func ExampleHandler() {
	dev := &fakeDevice{tag: tagmatch.Tag{{Key: "zone", Value: "South"}}, settings: Settings{"setpoint": 21}}
	h := NewHandler("home0001-climate", dev, HandlerOptions{})
	msg, _ := EncodeRequest(&Request{ID: "c1", Ident: "mqtt://home0001-climate?READ:SETTINGS?TAG"})
	out, _ := h.HandleBytes(context.Background(), msg)
	resp, _ := DecodeResponse(out)
	zone, _ := resp.Tag.Get(tagmatch.KeyZone)
	fmt.Println(resp.ID, resp.Device, zone)
	// Output: c1 home0001-climate South
}
