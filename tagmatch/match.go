package tagmatch

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// Candidate is one backed-up data piece a device may be restored from.
type Candidate struct {
	ID  string // the catalog piece id
	Tag Tag    // the tag backed up with the piece
}

// Outcome is what matching decided for one device.
type Outcome int

// The outcomes. The zero value is NoMatch, so a Result nobody filled in never
// leads to a write.
const (
	NoMatch   Outcome = iota // no candidate matches: nothing is written
	Matched                  // exactly one best candidate: restore Best
	Ambiguous                // the best two tie: nothing is written
)

// String returns "no match", "matched" or "ambiguous".
func (o Outcome) String() string {
	switch o {
	case NoMatch:
		return "no match"
	case Matched:
		return "matched"
	case Ambiguous:
		return "ambiguous"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// MarshalText writes the outcome as String does, for journals and JSON.
func (o Outcome) MarshalText() ([]byte, error) {
	if o < NoMatch || o > Ambiguous {
		return nil, fmt.Errorf("tagmatch: marshal outcome %d: unknown outcome", int(o))
	}
	return []byte(o.String()), nil
}

// UnmarshalText reads "matched", "no match" or "ambiguous".
func (o *Outcome) UnmarshalText(b []byte) error {
	for _, c := range []Outcome{NoMatch, Matched, Ambiguous} {
		if string(b) == c.String() {
			*o = c
			return nil
		}
	}
	return fmt.Errorf("tagmatch: unknown outcome %q (want matched, no match or ambiguous)", b)
}

// Result is the decision for one device. Best, RunnerUp and Closest point into
// the Matcher's normalised candidates; treat them as read-only.
type Result struct {
	Outcome Outcome
	// Best is the chosen candidate when Matched, one of the tied pair when Ambiguous.
	Best *Candidate
	// RunnerUp is the other tied candidate when Ambiguous, the next best matching
	// candidate (lower score) when Matched, nil otherwise.
	RunnerUp *Candidate
	// Closest is, on NoMatch, the candidate that failed on the fewest equality
	// keys (nil when the device was refused before comparing, or there are none).
	Closest *Candidate
	// Score is Best's score when Matched or Ambiguous (see Matcher), 0 otherwise.
	Score int
	// Reason says why, in a short phrase; Explain makes a whole sentence of it.
	Reason string
}

// Explain returns the result as one line a person can read, e.g.
// "matched piece xyz-north (score 8): manufacturer=Acme Corp., product=climate control, model=xyz, zone=North equal".
func Explain(r Result) string {
	switch r.Outcome {
	case Matched:
		if r.Best == nil {
			return "matched: " + r.Reason
		}
		return fmt.Sprintf("matched piece %s (score %d): %s", r.Best.ID, r.Score, r.Reason)
	case Ambiguous:
		if r.Best == nil || r.RunnerUp == nil {
			return "ambiguous: " + r.Reason + "; nothing written"
		}
		return fmt.Sprintf("ambiguous: pieces %s and %s both match with score %d; nothing written", r.Best.ID, r.RunnerUp.ID, r.Score)
	default:
		return "no backup matches: " + r.Reason
	}
}

// Explain is Explain(r).
func (r Result) Explain() string { return Explain(r) }

// Match matches one device against candidates under policy p. To match many
// devices, build a Matcher once with NewMatcher. A bad policy or candidate list
// gives NoMatch with the error as the reason.
func Match(p Policy, device Tag, candidates []Candidate) Result {
	m, err := NewMatcher(p, candidates)
	if err != nil {
		return Result{Outcome: NoMatch, Reason: err.Error()}
	}
	return m.Match(device)
}

// bitset is one bit per candidate, in the Matcher's ranked order.
type bitset []uint64

func (b bitset) set(i int) { b[i/64] |= 1 << (i % 64) }

type keyIndex struct {
	key    string
	absent bitset            // candidates without the key: wildcards, always allowed
	star   bitset            // candidates whose value is "*": allowed when the device has the key
	exact  map[string]bitset // value (lower-cased under IgnoreCase) -> candidates with it
}

// Matcher matches devices against a fixed candidate list under one policy. It
// precomputes, per equality key, which candidates accept which value, so a match
// is a few map lookups and bit operations. It is safe for concurrent use.
//
// Ranking: a candidate matches when, for every equality key it has, the device
// has the same value (or any value, when the candidate's value is "*"). Its score
// is 2 for each equality key it gives exactly plus 1 for each it gives as "*";
// a key it lacks scores 0. The highest score wins; when the two highest matching
// scores are equal the device is Ambiguous.
type Matcher struct {
	policy Policy
	cands  []Candidate // normalised, ranked by score (highest first), input order among equals
	scores []int
	why    []string // per candidate: the Matched reason
	keys   []keyIndex
	words  int
}

// NewMatcher validates p and the candidates (ID non-empty and unique, tag valid
// after Tag.Normalize) and builds the index.
func NewMatcher(p Policy, candidates []Candidate) (*Matcher, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	cands := make([]Candidate, len(candidates))
	seen := make(map[string]bool, len(candidates))
	for i, c := range candidates {
		if c.ID == "" {
			return nil, fmt.Errorf("tagmatch: candidate %d: empty id: %w", i+1, ErrInvalidCandidate)
		}
		if seen[c.ID] {
			return nil, fmt.Errorf("tagmatch: candidate %q listed twice: %w", c.ID, ErrInvalidCandidate)
		}
		seen[c.ID] = true
		t, err := c.Tag.Normalize()
		if err != nil {
			return nil, fmt.Errorf("tagmatch: candidate %q: %w: %w", c.ID, err, ErrInvalidCandidate)
		}
		cands[i] = Candidate{ID: c.ID, Tag: t}
	}
	m := &Matcher{policy: p, words: (len(cands) + 63) / 64}
	keys := p.EqualKeys()
	if p.AllKeys {
		for _, c := range cands {
			for _, a := range c.Tag {
				if !slices.Contains(keys, a.Key) {
					keys = append(keys, a.Key)
				}
			}
		}
	}
	scores := make([]int, len(cands))
	for i, c := range cands {
		for _, k := range keys {
			if v, ok := c.Tag.Get(k); ok {
				scores[i] += 1 + boolInt(v != "*")
			}
		}
	}
	order := make([]int, len(cands))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return scores[b] - scores[a] })
	m.cands = make([]Candidate, len(cands))
	m.scores = make([]int, len(cands))
	m.why = make([]string, len(cands))
	for r, i := range order {
		m.cands[r], m.scores[r] = cands[i], scores[i]
		m.why[r] = matchedReason(cands[i].Tag, keys)
	}
	m.keys = m.buildIndex(keys)
	return m, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (m *Matcher) buildIndex(keys []string) []keyIndex {
	idx := make([]keyIndex, len(keys))
	for ki, k := range keys {
		x := keyIndex{key: k, absent: make(bitset, m.words), star: make(bitset, m.words), exact: map[string]bitset{}}
		for r, c := range m.cands {
			v, ok := c.Tag.Get(k)
			switch {
			case !ok:
				x.absent.set(r)
			case v == "*":
				x.star.set(r)
			default:
				v = m.fold(v)
				b := x.exact[v]
				if b == nil {
					b = make(bitset, m.words)
					x.exact[v] = b
				}
				b.set(r)
			}
		}
		idx[ki] = x
	}
	return idx
}

func matchedReason(t Tag, keys []string) string {
	var parts []string
	for _, k := range keys {
		if v, ok := t.Get(k); ok {
			if v == "*" {
				parts = append(parts, k+" present")
			} else {
				parts = append(parts, k+"="+v)
			}
		}
	}
	if len(parts) == 0 {
		return "the piece's tag constrains no equality key"
	}
	return strings.Join(parts, ", ") + " equal"
}

func (m *Matcher) fold(v string) string {
	if !m.policy.IgnoreCase {
		return v
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c >= 0x80 || 'A' <= c && c <= 'Z' {
			return strings.ToLower(v)
		}
	}
	return v
}

// Policy returns the matcher's policy.
func (m *Matcher) Policy() Policy { return m.policy }

// Candidates returns the matcher's normalised candidates in ranked order.
func (m *Matcher) Candidates() []Candidate { return slices.Clone(m.cands) }

// Match decides for one device. A device tag that fails Tag.Normalize or a
// policy selector gives NoMatch with the reason.
func (m *Matcher) Match(device Tag) Result {
	dev, err := device.Normalize()
	if err != nil {
		return Result{Outcome: NoMatch, Reason: "device tag invalid: " + strings.TrimPrefix(err.Error(), "tagmatch: ")}
	}
	for _, s := range m.policy.Selectors {
		if !m.holds(s, dev) {
			return Result{Outcome: NoMatch, Reason: "device excluded by policy: " + excludedWhy(s, dev)}
		}
	}
	if len(m.cands) == 0 {
		return Result{Outcome: NoMatch, Reason: "the backup group has no pieces"}
	}
	var buf [16]uint64 // up to 1024 candidates without allocating
	var acc bitset
	if m.words <= len(buf) {
		acc = buf[:m.words]
	} else {
		acc = make(bitset, m.words)
	}
	for i := range acc {
		acc[i] = ^uint64(0)
	}
	for ki := range m.keys {
		x := &m.keys[ki]
		has, exact := m.lookup(x, dev)
		for w := range acc {
			acc[w] &= x.allowed(w, has, exact)
		}
	}
	best := nextBit(acc, 0, len(m.cands))
	if best < 0 {
		return m.noMatch(dev)
	}
	r := Result{Outcome: Matched, Best: &m.cands[best], Score: m.scores[best], Reason: m.why[best]}
	if next := nextBit(acc, best+1, len(m.cands)); next >= 0 {
		r.RunnerUp = &m.cands[next]
		if m.scores[next] == m.scores[best] {
			r.Outcome = Ambiguous
			r.Reason = "pieces " + r.Best.ID + " and " + r.RunnerUp.ID + " tie"
		}
	}
	return r
}

// nextBit returns the first set bit at or after from, below n, or -1.
func nextBit(b bitset, from, n int) int {
	for w := from / 64; w < len(b); w++ {
		word := b[w]
		if w == from/64 {
			word &= ^uint64(0) << (from % 64)
		}
		if word != 0 {
			i := w*64 + bits.TrailingZeros64(word)
			if i < n {
				return i
			}
			return -1
		}
	}
	return -1
}

// lookup returns whether dev has x's key and which candidates hold its value exactly.
func (m *Matcher) lookup(x *keyIndex, dev Tag) (has bool, exact bitset) {
	v, has := dev.Get(x.key)
	if has {
		exact = x.exact[m.fold(v)]
	}
	return has, exact
}

// allowed returns word w of the candidates that accept the device on x's key.
func (x *keyIndex) allowed(w int, has bool, exact bitset) uint64 {
	a := x.absent[w]
	if has {
		a |= x.star[w]
		if exact != nil {
			a |= exact[w]
		}
	}
	return a
}

// noMatch finds the candidate failing the fewest equality keys (the highest
// ranked among equals) and says how it fails.
func (m *Matcher) noMatch(dev Tag) Result {
	type keyLook struct {
		has   bool
		exact bitset
	}
	looks := make([]keyLook, len(m.keys))
	for ki := range m.keys {
		looks[ki].has, looks[ki].exact = m.lookup(&m.keys[ki], dev)
	}
	bestR, bestMiss := -1, 0
	for r := range m.cands {
		miss := 0
		for ki := range m.keys {
			if m.keys[ki].allowed(r/64, looks[ki].has, looks[ki].exact)&(1<<(r%64)) == 0 {
				miss++
			}
		}
		if bestR < 0 || miss < bestMiss {
			bestR, bestMiss = r, miss
		}
	}
	c := &m.cands[bestR]
	var diffs []string
	for ki := range m.keys {
		k := m.keys[ki].key
		if m.accepts(c.Tag, k, dev) {
			continue
		}
		want, _ := c.Tag.Get(k)
		if got, has := dev.Get(k); has {
			diffs = append(diffs, fmt.Sprintf("%s: device %s, piece %s", k, got, want))
		} else {
			diffs = append(diffs, fmt.Sprintf("%s: device has none, piece %s", k, want))
		}
	}
	return Result{Outcome: NoMatch, Closest: c, Reason: fmt.Sprintf("closest is piece %s (%s)", c.ID, strings.Join(diffs, "; "))}
}

// accepts reports whether candidate tag ct accepts the device on key k.
func (m *Matcher) accepts(ct Tag, k string, dev Tag) bool {
	want, ok := ct.Get(k)
	if !ok {
		return true
	}
	got, has := dev.Get(k)
	if !has {
		return false
	}
	return want == "*" || m.fold(want) == m.fold(got)
}
