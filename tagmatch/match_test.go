package tagmatch

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestNewMatcherErrors(t *testing.T) {
	ok := Tag{{Key: "model", Value: "xyz"}}
	cases := []struct {
		name  string
		p     Policy
		cands []Candidate
		want  error
		msg   string
	}{
		{"empty id", Policy{}, []Candidate{{ID: "", Tag: ok}}, ErrInvalidCandidate, "candidate 1: empty id"},
		{"duplicate id", Policy{}, []Candidate{{ID: "a", Tag: ok}, {ID: "a", Tag: ok}}, ErrInvalidCandidate, `"a" listed twice`},
		{"duplicate key", Policy{}, []Candidate{{ID: "a", Tag: Tag{{Key: "model", Value: "x"}, {Key: "MODEL", Value: "y"}}}}, ErrInvalidCandidate, "duplicate key"},
		{"control char", Policy{}, []Candidate{{ID: "a", Tag: Tag{{Key: "model", Value: "x\x00y"}}}}, ErrInvalidTag, "control character"},
		{"bad key", Policy{}, []Candidate{{ID: "a", Tag: Tag{{Key: "mo/del", Value: "x"}}}}, ErrInvalidTag, "not a normalised key"},
		{"empty equal", Policy{Equal: []string{}}, nil, ErrInvalidPolicy, "empty equal"},
		{"equal and all", Policy{Equal: []string{"model"}, AllKeys: true}, nil, ErrInvalidPolicy, "equal(*)"},
		{"equal twice", Policy{Equal: []string{"model", "model"}}, nil, ErrInvalidPolicy, "given twice"},
		{"selector no value", Policy{Selectors: []Selector{{Key: "zone", Op: OpEq}}}, nil, ErrInvalidPolicy, "want one value"},
		{"selector bad op", Policy{Selectors: []Selector{{Key: "zone", Op: 99, Values: []string{"x"}}}}, nil, ErrInvalidPolicy, "unknown operator"},
		{"selector empty list", Policy{Selectors: []Selector{{Key: "zone", Op: OpIn}}}, nil, ErrInvalidPolicy, "empty list"},
		{"alias key in policy", Policy{Equal: []string{"user_info"}}, nil, ErrInvalidPolicy, "not a normalised key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewMatcher(c.p, c.cands)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err %q does not say %q", err, c.msg)
			}
			r := Match(c.p, ok, c.cands)
			if r.Outcome != NoMatch || r.Reason == "" {
				t.Errorf("Match with a bad setup = %v %q, want no match with a reason", r.Outcome, r.Reason)
			}
		})
	}
}

func TestMatchRefusesBadDevices(t *testing.T) {
	m, err := NewMatcher(Policy{}, []Candidate{{ID: "p", Tag: Tag{{Key: "model", Value: "xyz"}}}})
	if err != nil {
		t.Fatal(err)
	}
	long := make(Tag, MaxAttrs+1)
	for i := range long {
		long[i] = Attr{Key: fmt.Sprintf("k%d", i), Value: "v"}
	}
	cases := []struct {
		name   string
		device Tag
		reason string
	}{
		{"duplicate key", Tag{{Key: "model", Value: "xyz"}, {Key: "Model", Value: "xyz"}}, "duplicate key"},
		{"too many attributes", long, "more than 64"},
		{"invalid utf-8", Tag{{Key: "model", Value: "xyz\xff"}}, "UTF-8"},
		{"empty key", Tag{{Key: "", Value: "xyz"}}, "not a normalised key"},
		{"empty tag", nil, "closest is piece p (model: device has none, piece xyz)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := m.Match(c.device)
			if r.Outcome != NoMatch {
				t.Fatalf("outcome %v, want no match", r.Outcome)
			}
			if !strings.Contains(r.Reason, c.reason) {
				t.Errorf("reason %q does not say %q", r.Reason, c.reason)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	a := &Candidate{ID: "p-3"}
	b := &Candidate{ID: "p-9"}
	cases := []struct {
		name string
		r    Result
		want string
	}{
		{"matched", Result{Outcome: Matched, Best: a, Score: 8, Reason: "zone=North equal"}, "matched piece p-3 (score 8): zone=North equal"},
		{"ambiguous", Result{Outcome: Ambiguous, Best: a, RunnerUp: b, Score: 4}, "ambiguous: pieces p-3 and p-9 both match with score 4; nothing written"},
		{"no match", Result{Reason: "closest is piece p-12 (zone: device South, piece North)"}, "no backup matches: closest is piece p-12 (zone: device South, piece North)"},
		{"zero result", Result{}, "no backup matches: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Explain(c.r); got != c.want {
				t.Errorf("Explain = %q, want %q", got, c.want)
			}
		})
	}
}

// fleetCandidates makes n candidates over models × zones × rooms, all distinct.
func fleetCandidates(n int) []Candidate {
	zones := []string{"North", "South", "East", "West"}
	out := make([]Candidate, n)
	for i := range out {
		out[i] = Candidate{ID: fmt.Sprintf("p-%d", i), Tag: Tag{
			{Key: KeyManufacturer, Value: "Acme Corp."},
			{Key: KeyProduct, Value: "climate control"},
			{Key: KeyModel, Value: fmt.Sprintf("m%d", i/len(zones))},
			{Key: KeyZone, Value: zones[i%len(zones)]},
		}}
	}
	return out
}

func TestMatcherManyCandidates(t *testing.T) {
	for _, n := range []int{1, 63, 64, 65, 257, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			cands := fleetCandidates(n)
			// A wildcard piece for the last model: less specific, never chosen over the exact one.
			cands = append(cands, Candidate{ID: "wild", Tag: Tag{{Key: KeyManufacturer, Value: "Acme Corp."}, {Key: KeyModel, Value: "*"}}})
			m, err := NewMatcher(Policy{}, cands)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				r := m.Match(cands[i].Tag)
				if r.Outcome != Matched || r.Best.ID != cands[i].ID {
					t.Fatalf("device %d: %s", i, r.Explain())
				}
			}
			other := Tag{{Key: KeyManufacturer, Value: "Acme Corp."}, {Key: KeyModel, Value: "zzz"}}
			if r := m.Match(other); r.Outcome != Matched || r.Best.ID != "wild" {
				t.Fatalf("other model: %s", r.Explain())
			}
		})
	}
}

func TestMatcherConcurrent(t *testing.T) {
	cands := fleetCandidates(100)
	m, err := NewMatcher(Policy{IgnoreCase: true}, cands)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < len(cands); i += 8 {
				if r := m.Match(cands[i].Tag); r.Outcome != Matched || r.Best.ID != cands[i].ID {
					errs <- fmt.Sprintf("device %d: %s", i, r.Explain())
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func BenchmarkMatcher(b *testing.B) {
	for _, n := range []int{5, 100, 1000} {
		b.Run(fmt.Sprintf("candidates=%d", n), func(b *testing.B) {
			cands := fleetCandidates(n)
			m, err := NewMatcher(Policy{}, cands)
			if err != nil {
				b.Fatal(err)
			}
			device := cands[n/2].Tag
			b.ReportAllocs()
			for b.Loop() {
				if r := m.Match(device); r.Outcome != Matched {
					b.Fatal(r.Explain())
				}
			}
		})
	}
}

func BenchmarkMatcherSelectors(b *testing.B) {
	p, err := ParsePolicy(`model in (m1, m2, m12), firmware >= 2.1, firmware < 3, room ~ "bed*"`)
	if err != nil {
		b.Fatal(err)
	}
	cands := fleetCandidates(100)
	m, err := NewMatcher(p, cands)
	if err != nil {
		b.Fatal(err)
	}
	device := append(cands[50].Tag[:4:4], Attr{Key: KeyFirmware, Value: "2.10"}, Attr{Key: "room", Value: "bedroom 2"})
	b.ReportAllocs()
	for b.Loop() {
		if r := m.Match(device); r.Outcome != Matched {
			b.Fatal(r.Explain())
		}
	}
}

func BenchmarkMatcherNoMatch(b *testing.B) {
	m, err := NewMatcher(Policy{}, fleetCandidates(100))
	if err != nil {
		b.Fatal(err)
	}
	device := Tag{{Key: KeyManufacturer, Value: "Acme Corp."}, {Key: KeyModel, Value: "m3"}, {Key: KeyZone, Value: "Central"}}
	b.ReportAllocs()
	for b.Loop() {
		if r := m.Match(device); r.Outcome != NoMatch {
			b.Fatal(r.Explain())
		}
	}
}

func BenchmarkParseText(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseText("Acme Corp. climate control model: xyz User info: South"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestOutcomeText(t *testing.T) {
	for _, o := range []Outcome{NoMatch, Matched, Ambiguous} {
		t.Run(o.String(), func(t *testing.T) {
			b, err := o.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			var back Outcome
			if err := back.UnmarshalText(b); err != nil || back != o {
				t.Fatalf("UnmarshalText(%q) = %v, %v", b, back, err)
			}
		})
	}
	var o Outcome
	if err := o.UnmarshalText([]byte("maybe")); err == nil || !strings.Contains(err.Error(), `"maybe"`) {
		t.Errorf("bad outcome: err = %v", err)
	}
	if _, err := Outcome(7).MarshalText(); err == nil {
		t.Error("MarshalText of an unknown outcome succeeded")
	}
}
