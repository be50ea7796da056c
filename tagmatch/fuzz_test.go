package tagmatch

import (
	"encoding/json"
	"reflect"
	"testing"
)

// seedFuzz adds the vectors' inputs of one form as seeds.
func seedFuzz(f *testing.F, form string) {
	v := loadVectorsF(f)
	switch form {
	case "text":
		for _, c := range v.Text {
			f.Add(c.Input)
		}
	case "kv":
		for _, c := range v.KV {
			f.Add(c.Input)
		}
	case "policy":
		for _, c := range v.Policy {
			f.Add(c.Input)
		}
		for _, c := range v.Match {
			f.Add(c.Policy)
		}
	}
}

func loadVectorsF(f *testing.F) vectors {
	var v vectors
	b, err := readVectors()
	if err != nil {
		f.Fatalf("read vectors: %v", err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		f.Fatalf("decode vectors: %v", err)
	}
	return v
}

// checkTagForms asserts that a parsed tag is canonical and survives every form.
func checkTagForms(t *testing.T, tg Tag) {
	t.Helper()
	if err := tg.Validate(); err != nil {
		t.Fatalf("parsed tag %v is not canonical: %v", tg, err)
	}
	if back, err := ParseText(tg.Text()); err != nil || !back.Equal(tg) {
		t.Fatalf("text round trip: %q -> %v, %v; want %v", tg.Text(), back, err, tg)
	}
	if back, err := ParseKV(tg.String()); err != nil || !back.Equal(tg) {
		t.Fatalf("kv round trip: %q -> %v, %v; want %v", tg.String(), back, err, tg)
	}
	js, err := json.Marshal(tg)
	if err != nil {
		t.Fatalf("marshal %v: %v", tg, err)
	}
	var back Tag
	if err := json.Unmarshal(js, &back); err != nil || !back.Equal(tg) {
		t.Fatalf("json round trip: %s -> %v, %v; want %v", js, back, err, tg)
	}
	if n, err := tg.Normalize(); err != nil || !n.Equal(tg) {
		t.Fatalf("Normalize changed a canonical tag: %v -> %v, %v", tg, n, err)
	}
}

func FuzzParseText(f *testing.F) {
	seedFuzz(f, "text")
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseText(s)
		if err != nil {
			return
		}
		checkTagForms(t, tg)
	})
}

func FuzzParseKV(f *testing.F) {
	seedFuzz(f, "kv")
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseKV(s)
		if err != nil {
			return
		}
		checkTagForms(t, tg)
	})
}

func FuzzParsePolicy(f *testing.F) {
	seedFuzz(f, "policy")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy(s)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParsePolicy(%q) gave an invalid policy: %v", s, err)
		}
		back, err := ParsePolicy(p.String())
		if err != nil || !reflect.DeepEqual(back, p) {
			t.Fatalf("round trip: %q -> %q -> %#v, %v; want %#v", s, p.String(), back, err, p)
		}
		m, err := NewMatcher(p, []Candidate{{ID: "p", Tag: Tag{{Key: KeyModel, Value: "xyz"}}}})
		if err != nil {
			t.Fatalf("NewMatcher: %v", err)
		}
		_ = m.Match(Tag{{Key: KeyModel, Value: "xyz"}, {Key: KeyFirmware, Value: "2.1"}, {Key: "room", Value: "bedroom"}})
	})
}

func FuzzCompareVersions(f *testing.F) {
	for _, c := range loadVectorsF(f).Versions {
		f.Add(c.A, c.B)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := CompareVersions(a, b), CompareVersions(b, a)
		if ab != -ba || ab < -1 || ab > 1 {
			t.Fatalf("CompareVersions(%q, %q) = %d but reversed %d", a, b, ab, ba)
		}
		if CompareVersions(a, a) != 0 {
			t.Fatalf("CompareVersions(%q, itself) != 0", a)
		}
	})
}

func FuzzGlob(f *testing.F) {
	f.Add("bed*", "bedroom")
	f.Add(`a\*?`, "a*x")
	f.Add("*a*b*", "xxaxxb")
	f.Fuzz(func(t *testing.T, p, s string) {
		if !globMatch("*", s) {
			t.Fatalf("* does not match %q", s)
		}
		_ = globMatch(p, s)
		lit := make([]byte, 0, 2*len(s))
		for i := 0; i < len(s); i++ {
			if s[i] == '*' || s[i] == '?' || s[i] == '\\' {
				lit = append(lit, '\\')
			}
			lit = append(lit, s[i])
		}
		if !globMatch(string(lit), s) {
			t.Fatalf("escaped literal %q does not match %q", lit, s)
		}
	})
}
