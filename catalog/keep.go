package catalog

import (
	"sort"
	"time"
)

// retentionPeriods are restic's forget buckets (internal/restic/
// snapshot_policy.go, restic 0.14): a piece opens a new period when its
// bucket value differs from the previous kept-by-this-count piece's.
var retentionPeriods = []struct {
	count  func(KeepRule) int
	bucket func(t time.Time) int
}{
	{func(r KeepRule) int { return r.Hourly }, func(t time.Time) int {
		return t.Year()*1000000 + int(t.Month())*10000 + t.Day()*100 + t.Hour()
	}},
	{func(r KeepRule) int { return r.Daily }, func(t time.Time) int { return t.Year()*10000 + int(t.Month())*100 + t.Day() }},
	{func(r KeepRule) int { return r.Weekly }, func(t time.Time) int { y, w := t.ISOWeek(); return y*100 + w }},
	{func(r KeepRule) int { return r.Monthly }, func(t time.Time) int { return t.Year()*100 + int(t.Month()) }},
	{func(r KeepRule) int { return r.Yearly }, func(t time.Time) int { return t.Year() }},
}

// Keepers applies rule to the backup times of one series, given newest
// first (ties in any fixed order), and reports which to keep, exactly as
// restic 0.14's `forget --keep-last/-hourly/-daily/-weekly/-monthly/-yearly`
// does with the snapshots' times in UTC:
//
//   - keep-last n keeps the n newest, equal times counted one by one;
//   - each other count walks the series newest first and keeps a time when
//     its period (hour, day, ISO week, month, year) differs from the period
//     of the last time this count kept, until the count is used up; so it
//     keeps the newest time of each of the n newest periods that have one,
//     and of equal times only the first in the order given;
//   - a time is kept if any count keeps it; a rule with no count keeps all.
//
// restic 0.16 and later also keep the oldest snapshot while a count is left
// over, and accept -1 (unlimited); Fleetvault follows 0.14, the restic that
// `make test` cross-checks against.
func Keepers(rule KeepRule, newestFirst []time.Time) []bool {
	keep := make([]bool, len(newestFirst))
	if rule.empty() {
		for i := range keep {
			keep[i] = true
		}
		return keep
	}
	for i := 0; i < rule.Last && i < len(keep); i++ {
		keep[i] = true
	}
	for _, p := range retentionPeriods {
		left, last := p.count(rule), -1
		for i := 0; i < len(newestFirst) && left > 0; i++ {
			if v := p.bucket(newestFirst[i].UTC()); v != last {
				keep[i], last = true, v
				left--
			}
		}
	}
	return keep
}

// sortForRetention orders a series newest first, equal times by piece id,
// so that which of two equal-time pieces a period keeps does not depend on
// storage order.
func sortForRetention(ps []Piece) {
	sort.SliceStable(ps, func(i, j int) bool {
		if !ps[i].Time.Equal(ps[j].Time) {
			return ps[i].Time.After(ps[j].Time)
		}
		return ps[i].ID < ps[j].ID
	})
}

func pieceTimes(ps []Piece) []time.Time {
	out := make([]time.Time, len(ps))
	for i, p := range ps {
		out[i] = p.Time
	}
	return out
}
