package tagmatch

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// refMatch is a direct, slow reading of docs/spec/tagmatch.md section 6, used to
// check the indexed Matcher. It returns the outcome and the ids of the best two.
func refMatch(p Policy, dev Tag, cands []Candidate) (Outcome, string, string, int) {
	dev, err := dev.Normalize()
	if err != nil {
		return NoMatch, "", "", 0
	}
	m := &Matcher{policy: p}
	for _, s := range p.Selectors {
		if !m.holds(s, dev) {
			return NoMatch, "", "", 0
		}
	}
	eq := func(a, b string) bool {
		if p.IgnoreCase {
			return strings.ToLower(a) == strings.ToLower(b)
		}
		return a == b
	}
	isEqKey := func(k string) bool {
		if p.AllKeys {
			return true
		}
		for _, e := range p.EqualKeys() {
			if e == k {
				return true
			}
		}
		return false
	}
	best, second, bestScore, secondScore := "", "", -1, -1
	for _, c := range cands {
		ok, score := true, 0
		for _, a := range c.Tag {
			if !isEqKey(a.Key) {
				continue
			}
			got, has := dev.Get(a.Key)
			switch {
			case !has:
				ok = false
			case a.Value == "*":
				score++
			case eq(a.Value, got):
				score += 2
			default:
				ok = false
			}
		}
		if !ok {
			continue
		}
		switch {
		case score > bestScore:
			second, secondScore = best, bestScore
			best, bestScore = c.ID, score
		case score > secondScore:
			second, secondScore = c.ID, score
		}
	}
	switch {
	case best == "":
		return NoMatch, "", "", 0
	case second != "" && secondScore == bestScore:
		return Ambiguous, best, second, bestScore
	}
	return Matched, best, "", bestScore
}

// randomTag draws a tag from a small vocabulary so that matches, ties and
// misses all happen often.
func randomTag(r *rand.Rand) Tag {
	keys := []string{KeyManufacturer, KeyProduct, KeyModel, KeyZone, KeyFirmware, "room"}
	vals := []string{"a", "b", "A", "*"}
	var t Tag
	for _, k := range keys {
		if r.IntN(3) > 0 {
			t = append(t, Attr{Key: k, Value: vals[r.IntN(len(vals))]})
		}
	}
	return t
}

func TestMatcherAgreesWithReference(t *testing.T) {
	policies := []string{"", "ignorecase", "equal(*)", "equal(model, room)", "zone != b", "firmware in (a, b), ignorecase"}
	r := rand.New(rand.NewPCG(1, 2))
	rounds := 3000
	if testing.Short() {
		rounds = 500
	}
	for _, ps := range policies {
		t.Run(ps, func(t *testing.T) {
			p, err := ParsePolicy(ps)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < rounds; i++ {
				cands := make([]Candidate, r.IntN(8))
				for j := range cands {
					cands[j] = Candidate{ID: fmt.Sprintf("p%d", j), Tag: randomTag(r)}
				}
				dev := randomTag(r)
				got := Match(p, dev, cands)
				wo, wb, wr, ws := refMatch(p, dev, cands)
				if got.Outcome != wo || candID(got.Best) != wb || got.Score != ws || (wo == Ambiguous && candID(got.RunnerUp) != wr) {
					t.Fatalf("device %v, candidates %v: got %s (best %q runner-up %q score %d), want %v best %q runner-up %q score %d",
						dev, cands, got.Outcome, candID(got.Best), candID(got.RunnerUp), got.Score, wo, wb, wr, ws)
				}
			}
		})
	}
}

func TestMatcherDoesNotAllocate(t *testing.T) {
	cands := fleetCandidates(100)
	m, err := NewMatcher(Policy{}, cands)
	if err != nil {
		t.Fatal(err)
	}
	dev := cands[42].Tag
	if n := testing.AllocsPerRun(100, func() { _ = m.Match(dev) }); n != 0 {
		t.Errorf("Match allocates %v times per call, want 0", n)
	}
}
