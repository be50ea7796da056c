package grouprestore

import (
	"fmt"

	"github.com/fleetvault/fleetvault/tagmatch"
)

// matcher adapts package tagmatch to the engine: it maps each device tag to
// the piece to write, or to a final state and a reason.
type matcher struct {
	m      *tagmatch.Matcher
	pieces map[string]Piece
}

func newMatcher(policy string, pieces []Piece) (*matcher, error) {
	p, err := tagmatch.ParsePolicy(policy)
	if err != nil {
		return nil, fmt.Errorf("match policy %q: %w", policy, err)
	}
	cands := make([]tagmatch.Candidate, len(pieces))
	byID := make(map[string]Piece, len(pieces))
	for i, pc := range pieces {
		cands[i] = tagmatch.Candidate{ID: pc.ID, Tag: pc.Tag}
		byID[pc.ID] = pc
	}
	m, err := tagmatch.NewMatcher(p, cands)
	if err != nil {
		return nil, fmt.Errorf("match policy %q: %w", policy, err)
	}
	return &matcher{m: m, pieces: byID}, nil
}

// match returns the piece for tag, or the final state and the explanation.
func (m *matcher) match(tag tagmatch.Tag) (Piece, State, string) {
	r := m.m.Match(tag)
	why := tagmatch.Explain(r)
	switch r.Outcome {
	case tagmatch.Matched:
		return m.pieces[r.Best.ID], "", why
	case tagmatch.Ambiguous:
		return Piece{}, Ambiguous, why
	default:
		return Piece{}, NoMatch, why
	}
}
