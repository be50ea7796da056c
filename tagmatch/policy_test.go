package tagmatch

import (
	"reflect"
	"testing"
)

func TestParsePolicyValue(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want Policy
	}{
		{"empty", "", Policy{}},
		{"white space only", "  ", Policy{}},
		{"equal list", "equal(model, zone)", Policy{Equal: []string{"model", "zone"}}},
		{"equal star, ignorecase", "ignorecase, equal(*)", Policy{AllKeys: true, IgnoreCase: true}},
		{"selectors", `model in (xyz, "xyz 2"), firmware>=2.1, room ~ "bed*", zone not in (North)`, Policy{Selectors: []Selector{
			{Key: "model", Op: OpIn, Values: []string{"xyz", "xyz 2"}},
			{Key: "firmware", Op: OpGe, Values: []string{"2.1"}},
			{Key: "room", Op: OpGlob, Values: []string{"bed*"}},
			{Key: "zone", Op: OpNotIn, Values: []string{"North"}},
		}}},
		{"key named equal", "equal = x", Policy{Selectors: []Selector{{Key: "equal", Op: OpEq, Values: []string{"x"}}}}},
		{"key named ignorecase", "ignorecase != x", Policy{Selectors: []Selector{{Key: "ignorecase", Op: OpNe, Values: []string{"x"}}}}},
		{"key named in", "in in (a)", Policy{Selectors: []Selector{{Key: "in", Op: OpIn, Values: []string{"a"}}}}},
		{"bare value with spaces", "product = climate control", Policy{Selectors: []Selector{{Key: "product", Op: OpEq, Values: []string{"climate control"}}}}},
		{"alias key", "User_Info = South", Policy{Selectors: []Selector{{Key: "zone", Op: OpEq, Values: []string{"South"}}}}},
		{"upper-case operator word", "model IN (a), zone NOT IN (b)", Policy{Selectors: []Selector{
			{Key: "model", Op: OpIn, Values: []string{"a"}},
			{Key: "zone", Op: OpNotIn, Values: []string{"b"}},
		}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParsePolicy(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("ParsePolicy(%q) = %#v, want %#v", c.in, got, c.want)
			}
			back, err := ParsePolicy(got.String())
			if err != nil || !reflect.DeepEqual(back, got) {
				t.Fatalf("round trip via %q = %#v, %v", got.String(), back, err)
			}
		})
	}
}

func TestPolicyStringQuotes(t *testing.T) {
	p := Policy{Selectors: []Selector{
		{Key: "manufacturer", Op: OpEq, Values: []string{"Acme, Inc."}},
		{Key: "note", Op: OpIn, Values: []string{`say "hi"`, "a(b)", "x=y", ""}},
	}}
	want := `manufacturer = "Acme, Inc.", note in ("say \"hi\"", "a(b)", "x=y", "")`
	if got := p.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	back, err := ParsePolicy(want)
	if err != nil || !reflect.DeepEqual(back, p) {
		t.Fatalf("ParsePolicy(%q) = %#v, %v", want, back, err)
	}
}

func TestSelectors(t *testing.T) {
	device := Tag{{Key: "model", Value: "XYZ"}, {Key: "firmware", Value: "2.10"}, {Key: "room", Value: "Bedroom 2"}}
	cases := []struct {
		policy string
		want   bool
	}{
		{"model = XYZ", true},
		{"model = xyz", false},
		{"ignorecase, model = xyz", true},
		{"model != XYZ", false},
		{"zone != North", true},
		{"zone = North", false},
		{"model in (a, XYZ)", true},
		{"model not in (a, XYZ)", false},
		{"zone not in (North)", true},
		{"firmware > 2.9", true},
		{"firmware >= 2.10.0", true},
		{"firmware <= 2.10", true},
		{"firmware < 2.10", false},
		{"firmware < 10", true},
		{"zone < 3", false},
		{"room ~ Bed*", true},
		{"room ~ bed*", false},
		{"ignorecase, room ~ bed*", true},
		{"room ~ \"Bedroom ?\"", true},
		{"room !~ Bed*", false},
		{"zone !~ x*", true},
	}
	for _, c := range cases {
		t.Run(c.policy, func(t *testing.T) {
			p, err := ParsePolicy(c.policy)
			if err != nil {
				t.Fatal(err)
			}
			m, err := NewMatcher(p, []Candidate{{ID: "p", Tag: Tag{{Key: "model", Value: "*"}}}})
			if err != nil {
				t.Fatal(err)
			}
			r := m.Match(device)
			if got := r.Outcome == Matched; got != c.want {
				t.Fatalf("matched = %v, want %v (%s)", got, c.want, r.Explain())
			}
		})
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"bed*", "bedroom", true},
		{"bed*", "abed", false},
		{"*room", "bedroom", true},
		{"b?d", "bed", true},
		{"b?d", "bd", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{`a\*`, "a*", true},
		{`a\*`, "ab", false},
		{`a\?`, "a?", true},
		{"a/b*", "a/bc", true},
		{"é?", "éa", true},
		{"**a", "xa", true},
	}
	for _, c := range cases {
		t.Run(c.p+" "+c.s, func(t *testing.T) {
			if got := globMatch(c.p, c.s); got != c.want {
				t.Errorf("globMatch(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
			}
		})
	}
}
