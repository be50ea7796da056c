package identifiers

import (
	"math/rand"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"testing/quick"
)

// validID is a random valid identifier in canonical form, for testing/quick.
type validID struct{ ID ID }

func (validID) Generate(r *rand.Rand, _ int) reflect.Value {
	return reflect.ValueOf(validID{randomID(r)})
}

func randomID(r *rand.Rand) ID {
	var id ID
	if r.Intn(2) == 0 {
		id.Scheme = schemes[r.Intn(len(schemes))]
	}
	id.Address = randomAddress(r)
	if r.Intn(3) > 0 {
		id.Port = 1 + r.Intn(65535)
	}
	id.Method = randomMethod(r)
	for n := r.Intn(5); n > 0; n-- {
		id.Params = append(id.Params, randomParam(r))
	}
	id.Location = randomLocation(r)
	return id
}

func randomAddress(r *rand.Rand) string {
	switch r.Intn(4) {
	case 0:
		var b [4]byte
		r.Read(b[:])
		return netip.AddrFrom4(b).String()
	case 1:
		var b [16]byte
		r.Read(b[:])
		if r.Intn(2) == 0 {
			clear(b[2:14]) // compressible
		}
		return netip.AddrFrom16(b).String()
	default:
		var labels []string
		for n := 1 + r.Intn(3); n > 0; n-- {
			labels = append(labels, randomText(r, "abcxyzABC019-_", 1+r.Intn(8)))
		}
		if len(labels) > 1 && allDigits(labels[0]) {
			labels[0] = "d" + labels[0]
		}
		return strings.Join(labels, ".")
	}
}

func randomMethod(r *rand.Rand) string {
	return randomText(r, "RWX", 1) + randomText(r, "READWRITE_0123SNAP", r.Intn(10))
}

// paramChars may appear anywhere in a param outside a placeholder.
const paramChars = "abcXYZ019 .:+-/=_üé"

func randomParam(r *rand.Rand) string {
	switch r.Intn(4) {
	case 0:
		return "<" + randomText(r, paramChars+",?:", r.Intn(12)) + ">"
	case 1:
		return randomText(r, "abcKEY", 1+r.Intn(4)) + ":" + randomText(r, paramChars, 1+r.Intn(12))
	case 2:
		return randomText(r, paramChars, 1+r.Intn(4)) + "<" + randomText(r, paramChars+",?", r.Intn(6)) + ">" + randomText(r, paramChars, r.Intn(3))
	default:
		return randomText(r, paramChars, 1+r.Intn(12))
	}
}

func randomLocation(r *rand.Rand) string {
	loc := randomText(r, paramChars+"?,<>", 1+r.Intn(20))
	return strings.TrimRight(loc, " ") + "x"
}

func randomText(r *rand.Rand, alphabet string, n int) string {
	runes := []rune(alphabet)
	var b strings.Builder
	for range n {
		b.WriteRune(runes[r.Intn(len(runes))])
	}
	return b.String()
}

// TestRoundTripProperty: for every valid identifier x, Parse(x.String()) == x,
// and formatting is stable.
func TestRoundTripProperty(t *testing.T) {
	n := 5000
	if testing.Short() {
		n = 1000
	}
	f := func(v validID) bool {
		back, err := Parse(v.ID.String())
		if err != nil {
			t.Logf("Parse(%q): %v", v.ID.String(), err)
			return false
		}
		return back.Equal(v.ID) && back.String() == v.ID.String()
	}
	if err := quick.Check(f, &quick.Config{MaxCount: n}); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		id   ID
		ok   bool
	}{
		{"settings constructor", ReadTag("mqtt", "home1-thermo", 0), true},
		{"coap write", WriteSettings("coap", "127.0.0.1", 5683), true},
		{"lower-case method", ID{Address: "h", Method: "read", Location: "TAG"}, false},
		{"IPv6 not compressed", ID{Address: "0:0::1", Method: "READ", Location: "TAG"}, false},
		{"empty param", ID{Address: "h", Method: "READ", Params: []string{""}, Location: "TAG"}, false},
		{"comma in param", ID{Address: "h", Method: "READ", Params: []string{"a,b"}, Location: "TAG"}, false},
		{"no location", ID{Address: "h", Method: "READ"}, false},
		{"bad port", ID{Address: "h", Port: 70000, Method: "READ", Location: "TAG"}, false},
		{"zero", ID{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.id.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(%#v) = %v, want ok=%v", tt.id, err, tt.ok)
			}
		})
	}
}

func TestHelpers(t *testing.T) {
	id := MustParse("10.10.11.44:6543?WRITE:IP:10.10.11.45,dedupe,<a:b>?/mtree/backup/<client-id>")
	if got := id.Param(1); got != "dedupe" {
		t.Errorf("Param(1) = %q", got)
	}
	if got := id.Param(9); got != "" {
		t.Errorf("Param(9) = %q", got)
	}
	if v, ok := id.ParamValue("ip"); !ok || v != "10.10.11.45" {
		t.Errorf("ParamValue(ip) = %q, %v", v, ok)
	}
	if _, ok := id.ParamValue("a"); ok {
		t.Errorf("ParamValue(a) found a key inside a placeholder")
	}
	if !id.HasParam("DEDUPE") || id.HasParam("snap") {
		t.Errorf("HasParam wrong")
	}
	if id.IsSettings() {
		t.Errorf("IsSettings true for a dedupe write")
	}
	if got := id.HostPort(); got != "10.10.11.44:6543" {
		t.Errorf("HostPort = %q", got)
	}
	tests := []struct {
		name string
		id   ID
		want string
	}{
		{"ReadTag", ReadTag("mqtt", "home0001-climate", 0), "mqtt://home0001-climate?READ:SETTINGS?TAG"},
		{"ReadSettings", ReadSettings("", "10.0.0.1", 7890), "10.0.0.1:7890?READ:SETTINGS?SETTINGS"},
		{"WriteSettings", WriteSettings("coap", "::1", 5683), "coap://[::1]:5683?WRITE:SETTINGS?TAG+SETTINGS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.id.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if !tt.id.IsSettings() {
				t.Errorf("IsSettings false")
			}
			checkRoundTrip(t, tt.id)
		})
	}
}

// TestCheckHostAgreesWithParse: CheckHost, the rule device ids use, accepts
// exactly the unbracketed addresses Parse accepts.
func TestCheckHostAgreesWithParse(t *testing.T) {
	for _, h := range []string{"home0001-climate", "12345", "10.0.0.7", "a_b.c-d", "1.2", "010.1.1.1", "10.0.0.256",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 70), "a..b", ".a", "a.", "h st", "h/1", "süd", ""} {
		t.Run(h, func(t *testing.T) {
			_, perr := Parse(h + "?READ?TAG")
			cerr := CheckHost(h)
			if (perr == nil) != (cerr == nil) {
				t.Errorf("Parse: %v; CheckHost: %v", perr, cerr)
			}
		})
	}
}
