package settingsdoc

import (
	"errors"
	"testing"
)

func TestParsePointer(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		err      bool
	}{
		{name: "one token", in: "/name", want: []string{"name"}},
		{name: "escapes", in: "/a~1b/c~0d", want: []string{"a/b", "c~d"}},
		{name: "wildcard", in: "/network/*", want: []string{"network", "*"}},
		{name: "empty key", in: "/", want: []string{""}},
		{name: "whole document", in: "", err: true},
		{name: "no slash", in: "name", err: true},
		{name: "bad escape", in: "/a~", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePointer(tc.in)
			if tc.err {
				if !errors.Is(err, ErrPointer) {
					t.Fatalf("got %v, want ErrPointer", err)
				}
				return
			}
			if err != nil || len(p) != len(tc.want) {
				t.Fatalf("got %q, %v", p, err)
			}
			for i := range p {
				if p[i] != tc.want[i] {
					t.Fatalf("got %q, want %q", p, tc.want)
				}
			}
			if p.String() != tc.in {
				t.Fatalf("round trip %q -> %q", tc.in, p.String())
			}
		})
	}
}

func TestCompileRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Profile
	}{
		{name: "bad name", p: Profile{Name: "a b", Keep: []string{"/name"}}},
		{name: "empty", p: Profile{Name: "p"}},
		{name: "bad template", p: Profile{Name: "p", Set: []Assign{{Pointer: "/name", Template: "{{.Device.ID"}}}},
		{name: "bad set pointer", p: Profile{Name: "p", Set: []Assign{{Pointer: "name", Template: "x"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.p.Compile(); !errors.Is(err, ErrProfile) {
				t.Fatalf("got %v, want ErrProfile", err)
			}
		})
	}
}

func FuzzParsePointer(f *testing.F) {
	for _, s := range []string{"/name", "/a~1b", "/*/x", "", "~", "/~2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePointer(s)
		if err != nil {
			return
		}
		q, err := ParsePointer(p.String())
		if err != nil || q.String() != p.String() {
			t.Fatalf("%q: round trip %q, %v", s, p.String(), err)
		}
	})
}
