package tagmatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestNormalizeKey(t *testing.T) {
	cases := []struct{ in, want string }{
		{"model", "model"},
		{"Model", "model"},
		{"  MODEL ", "model"},
		{"User info", "zone"},
		{"user   INFO", "zone"},
		{"User_Info", "zone"},
		{"user-info", "user-info"},
		{"Serial Number", "serial_number"},
		{"zone", "zone"},
		{"", ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			if got := NormalizeKey(c.in); got != c.want {
				t.Errorf("NormalizeKey(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		tag  Tag
		msg  string // "" for valid
	}{
		{"valid", Tag{{Key: "model", Value: "xyz"}, {Key: "room", Value: "bed room"}}, ""},
		{"empty", nil, ""},
		{"empty value", Tag{{Key: "model", Value: ""}}, ""},
		{"upper-case key", Tag{{Key: "Model", Value: "x"}}, "not a normalised key"},
		{"alias key", Tag{{Key: "user_info", Value: "x"}}, "not a normalised key"},
		{"key starting with _", Tag{{Key: "_x", Value: "x"}}, "not a normalised key"},
		{"long key", Tag{{Key: strings.Repeat("k", MaxKeyLen+1), Value: "x"}}, "not a normalised key"},
		{"long value", Tag{{Key: "k", Value: strings.Repeat("v", MaxValueLen+1)}}, "longer than"},
		{"newline", Tag{{Key: "k", Value: "a\nb"}}, "control character"},
		{"surrounding space", Tag{{Key: "k", Value: " a"}}, "surrounding white space"},
		{"bad utf-8", Tag{{Key: "k", Value: "\xc3"}}, "UTF-8"},
		{"duplicate", Tag{{Key: "k", Value: "a"}, {Key: "k", Value: "a"}}, "duplicate key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.tag.Validate()
			if c.msg == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidTag) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Validate = %v, want ErrInvalidTag saying %q", err, c.msg)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	in := Tag{{Key: " Model", Value: " xyz "}, {Key: "User info", Value: "South"}}
	got, err := in.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	want := Tag{{Key: "model", Value: "xyz"}, {Key: "zone", Value: "South"}}
	if !got.Equal(want) {
		t.Fatalf("Normalize = %v, want %v", got, want)
	}
	if _, err := (Tag{{Key: "zone", Value: "a"}, {Key: "User Info", Value: "b"}}).Normalize(); !errors.Is(err, ErrInvalidTag) {
		t.Errorf("duplicate after normalisation: err = %v", err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = want.Normalize() }); n != 0 {
		t.Errorf("Normalize of a canonical tag allocates %v times", n)
	}
}

func TestCanonical(t *testing.T) {
	a := Tag{{Key: "zone", Value: "South"}, {Key: "model", Value: "xyz"}}
	b := Tag{{Key: "Model", Value: " xyz"}, {Key: "User info", Value: "South"}}
	if a.Canonical() != b.Canonical() {
		t.Errorf("Canonical differs: %q vs %q", a.Canonical(), b.Canonical())
	}
	if got, want := a.Canonical(), "model=xyz;zone=South"; got != want {
		t.Errorf("Canonical = %q, want %q", got, want)
	}
}

// TestTextRoundTrip covers tags built in code, whose shape no text vector parses to.
func TestTextRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		tag  Tag
		text string
	}{
		{"manufacturer not first", Tag{{Key: "model", Value: "xyz"}, {Key: "manufacturer", Value: "Acme Corp."}}, "model: xyz manufacturer: Acme Corp."},
		{"product alone", Tag{{Key: "product", Value: "climate control"}}, "product: climate control"},
		{"manufacturer that would split", Tag{{Key: "manufacturer", Value: "Acme Widgets"}}, `"Acme Widgets"`},
		{"product that would merge", Tag{{Key: "manufacturer", Value: "Acme"}, {Key: "product", Value: "Corp. heater"}}, `"Acme" Corp. heater`},
		{"product needing quotes", Tag{{Key: "manufacturer", Value: "Acme Corp."}, {Key: "product", Value: "a: b"}}, `"Acme Corp." "a: b"`},
		{"value ending in user", Tag{{Key: "owner", Value: "power user"}, {Key: "info", Value: "x"}}, `owner: "power user" info: x`},
		{"double space", Tag{{Key: "note", Value: "a  b"}}, `note: "a  b"`},
		{"non-breaking space", Tag{{Key: "note", Value: "a\u00a0b"}}, "note: \"a\u00a0b\""},
		{"empty manufacturer", Tag{{Key: "manufacturer", Value: ""}}, `""`},
		{"free key named like the zone label", Tag{{Key: "user", Value: "x"}, {Key: "zone", Value: "South"}}, "user: x User info: South"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.tag.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := c.tag.Text(); got != c.text {
				t.Errorf("Text() = %q, want %q", got, c.text)
			}
			back, err := ParseText(c.tag.Text())
			if err != nil || !back.Equal(c.tag) {
				t.Fatalf("ParseText(%q) = %v, %v; want %v", c.tag.Text(), back, err, c.tag)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	want := Tag{{Key: "manufacturer", Value: "Acme Corp."}, {Key: "zone", Value: "South"}}
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != `{"manufacturer":"Acme Corp.","zone":"South"}` {
		t.Errorf("Marshal = %s", got)
	}
	cases := []struct {
		name, in string
		want     Tag
		err      string
	}{
		{"object keeps order", `{"manufacturer":"Acme Corp.","zone":"South"}`, want, ""},
		{"object normalises keys", `{"Manufacturer":"Acme Corp.","User info":"South"}`, want, ""},
		{"array of attrs", `[{"key":"manufacturer","value":"Acme Corp."},{"key":"zone","value":"South"}]`, want, ""},
		{"kv string", `"manufacturer=Acme Corp.; zone=South"`, want, ""},
		{"empty object", `{}`, nil, ""},
		{"duplicate key", `{"zone":"a","Zone":"b"}`, nil, "duplicate key"},
		{"number value", `{"zone":1}`, nil, "value of \"zone\""},
		{"bad kv string", `"zone"`, nil, "expected key=value"},
		{"not a tag", `true`, nil, "want a JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got Tag
			err := json.Unmarshal([]byte(c.in), &got)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one saying %q", err, c.err)
				}
				return
			}
			if err != nil || !got.Equal(c.want) {
				t.Fatalf("Unmarshal(%s) = %v, %v; want %v", c.in, got, err, c.want)
			}
		})
	}
}

func TestTextMarshaler(t *testing.T) {
	want := Tag{{Key: "model", Value: "xyz"}, {Key: "note", Value: "a;b"}}
	b, err := want.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var got Tag
	if err := got.UnmarshalText(b); err != nil || !got.Equal(want) {
		t.Fatalf("UnmarshalText(%q) = %v, %v", b, got, err)
	}
	if err := got.UnmarshalText([]byte("=x")); !errors.Is(err, ErrSyntax) {
		t.Errorf("bad text: err = %v, want ErrSyntax", err)
	}
}

func TestParseLimits(t *testing.T) {
	big := strings.Repeat("a", MaxInputLen+1)
	for name, parse := range map[string]func(string) error{
		"text":   func(s string) error { _, err := ParseText(s); return err },
		"kv":     func(s string) error { _, err := ParseKV(s); return err },
		"policy": func(s string) error { _, err := ParsePolicy(s); return err },
	} {
		t.Run(name, func(t *testing.T) {
			if err := parse(big); !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "longer than") {
				t.Errorf("oversized input: err = %v", err)
			}
			if err := parse("model\xff"); !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "column 6: invalid UTF-8") {
				t.Errorf("invalid UTF-8: err = %v", err)
			}
		})
	}
	var b strings.Builder
	for i := 0; i <= MaxAttrs; i++ {
		fmt.Fprintf(&b, "k%d=v;", i)
	}
	if _, err := ParseKV(b.String()); err == nil || !strings.Contains(err.Error(), "more than 64 attributes") {
		t.Errorf("too many attributes: err = %v", err)
	}
}
