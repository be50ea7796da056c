package schedule

import (
	"fmt"
	"sort"
	"time"
)

// RPOStatus is one device's standing against a recovery point objective:
// the age of its last successful backup, and whether that age is within the
// objective. A metrics exporter turns it into a gauge (Age) and a 0/1 (Met).
type RPOStatus struct {
	Device      string
	RPO         time.Duration
	LastSuccess time.Time     // zero: never backed up successfully
	Age         time.Duration // now minus LastSuccess; 0 if LastSuccess is zero or in the future
	Met         bool
}

// State is "met" or "missed".
func (s RPOStatus) State() string {
	if s.Met {
		return "met"
	}
	return "missed"
}

// CheckRPO returns, for each device (sorted by name), whether its last
// successful backup (lastSuccess[device]; absent means never) is at most rpo
// old at now. A device never backed up has missed its objective; a last
// success in the future (clock skew) counts as age 0. rpo must be positive.
func CheckRPO(rpo time.Duration, now time.Time, devices []string, lastSuccess map[string]time.Time) ([]RPOStatus, error) {
	if rpo <= 0 {
		return nil, fmt.Errorf("schedule: RPO %v: %w: must be positive", rpo, ErrInvalid)
	}
	out := make([]RPOStatus, 0, len(devices))
	for _, d := range devices {
		st := RPOStatus{Device: d, RPO: rpo}
		last, ok := lastSuccess[d]
		if ok && !last.IsZero() {
			st.LastSuccess = last
			st.Age = max(now.Sub(last), 0)
			st.Met = st.Age <= rpo
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Device < out[j].Device })
	return out, nil
}
