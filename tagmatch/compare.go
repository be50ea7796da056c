package tagmatch

import "strings"

// CompareVersions compares two version strings by dotted components and returns
// -1, 0 or +1. A leading "v" or "V" is ignored. Components are compared in turn:
// two all-digit components numerically (so 2.10 > 2.9, and 007 = 7), otherwise
// by their leading digits numerically and then the rest: a pre-release suffix
// starting with "-" or "~" sorts before the bare number (0-rc1 < 0), any other
// suffix after it (1 < 1a < 1b), suffixes byte-wise among themselves; a missing
// component counts as 0 (2.1 = 2.1.0).
func CompareVersions(a, b string) int {
	a, b = trimV(a), trimV(b)
	for a != "" || b != "" {
		var ca, cb string
		ca, a = nextComponent(a)
		cb, b = nextComponent(b)
		if c := compareComponent(ca, cb); c != 0 {
			return c
		}
	}
	return 0
}

func trimV(s string) string {
	if len(s) > 1 && (s[0] == 'v' || s[0] == 'V') && s[1] >= '0' && s[1] <= '9' {
		return s[1:]
	}
	return s
}

func nextComponent(s string) (comp, rest string) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func compareComponent(a, b string) int {
	na, ra := leadingDigits(a)
	nb, rb := leadingDigits(b)
	if c := compareNumeric(na, nb); c != 0 {
		return c
	}
	if ra == rb {
		return 0
	}
	// A pre-release suffix ("-rc1", "~beta") sorts before the bare number, any
	// other suffix ("a", "+build") after it.
	if pa, pb := isPre(ra), isPre(rb); pa != pb {
		if pa {
			return -1
		}
		return 1
	}
	if ra == "" {
		return -1
	}
	if rb == "" {
		return 1
	}
	return strings.Compare(ra, rb)
}

func isPre(suffix string) bool {
	return suffix != "" && (suffix[0] == '-' || suffix[0] == '~')
}

func leadingDigits(s string) (digits, rest string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

// compareNumeric compares two digit strings of any length as numbers; "" is 0.
func compareNumeric(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// globMatch reports whether s matches pattern p, where "*" matches any run of
// characters (also none), "?" one character, and "\" makes the next character
// literal. Unlike path.Match, "/" is an ordinary character. It runs in O(len(p)·len(s))
// at worst (no backtracking blow-up).
func globMatch(p, s string) bool {
	pr, sr := []rune(p), []rune(s)
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(sr) {
		if pi < len(pr) {
			switch c := pr[pi]; {
			case c == '*':
				starP, starS = pi, si
				pi++
				continue
			case c == '?':
				pi++
				si++
				continue
			case c == '\\' && pi+1 < len(pr):
				if pr[pi+1] == sr[si] {
					pi += 2
					si++
					continue
				}
			case c == sr[si]:
				pi++
				si++
				continue
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		pi, si = starP+1, starS
	}
	for pi < len(pr) && pr[pi] == '*' {
		pi++
	}
	return pi == len(pr)
}
