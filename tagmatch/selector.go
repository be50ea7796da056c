package tagmatch

import (
	"fmt"
	"strings"
)

// holds reports whether device tag dev satisfies selector s under m's policy.
func (m *Matcher) holds(s Selector, dev Tag) bool {
	got, has := dev.Get(s.Key)
	switch s.Op {
	case OpNe, OpNotIn, OpNotGlob:
		if !has {
			return true
		}
	default:
		if !has {
			return false
		}
	}
	got = m.fold(got)
	switch s.Op {
	case OpEq:
		return got == m.fold(s.Values[0])
	case OpNe:
		return got != m.fold(s.Values[0])
	case OpIn, OpNotIn:
		in := false
		for _, v := range s.Values {
			if got == m.fold(v) {
				in = true
				break
			}
		}
		return in == (s.Op == OpIn)
	case OpGlob:
		return globMatch(m.fold(s.Values[0]), got)
	case OpNotGlob:
		return !globMatch(m.fold(s.Values[0]), got)
	case OpLt:
		return CompareVersions(got, m.fold(s.Values[0])) < 0
	case OpLe:
		return CompareVersions(got, m.fold(s.Values[0])) <= 0
	case OpGt:
		return CompareVersions(got, m.fold(s.Values[0])) > 0
	case OpGe:
		return CompareVersions(got, m.fold(s.Values[0])) >= 0
	}
	return false
}

// excludedWhy says how dev fails s, e.g. `firmware < 3 fails (device firmware=3.2)`.
func excludedWhy(s Selector, dev Tag) string {
	got, has := dev.Get(s.Key)
	if !has {
		return fmt.Sprintf("%s fails (device has no %s)", s, s.Key)
	}
	return fmt.Sprintf("%s fails (device %s=%s)", s, s.Key, strings.TrimSpace(got))
}
