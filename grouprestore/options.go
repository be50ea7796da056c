package grouprestore

import (
	"fmt"
	"time"
)

// Rollout controls how a job reaches its devices.
type Rollout struct {
	Concurrency int           `json:"concurrency"`            // devices in flight at once (default 256)
	Rate        float64       `json:"rate,omitempty"`         // devices started per second (0: unlimited)
	Canary      int           `json:"canary,omitempty"`       // first wave: this many devices...
	CanaryShare float64       `json:"canary_share,omitempty"` // ...or this share of them (0..1)
	WaveSize    int           `json:"wave_size,omitempty"`    // later waves (0: all the rest at once)
	Timeout     time.Duration `json:"timeout"`                // per request (default 5s)
	Retries     int           `json:"retries"`                // retries of a retryable failure (default 2)
	Backoff     time.Duration `json:"backoff"`                // first retry delay, doubled each time (default 200ms)
	OfflineTTL  time.Duration `json:"offline_ttl,omitempty"`  // how long an offline device may take to come online
	// Abort thresholds: the job aborts when, after at least MinCount devices
	// ended so, the share of failed (failed, rejected or tag-mismatch; or
	// no-match and ambiguous) devices among those done exceeds the maximum.
	// Zero shares disable the check.
	MaxFailureShare float64 `json:"max_failure_share,omitempty"`
	MinFailures     int     `json:"min_failures,omitempty"`
	MaxNoMatchShare float64 `json:"max_nomatch_share,omitempty"`
	MinNoMatches    int     `json:"min_nomatches,omitempty"`
	// ReadBack reads the settings back after a write and compares their hash too.
	ReadBack bool `json:"read_back,omitempty"`
}

// withDefaults fills unset fields.
func (r Rollout) withDefaults() Rollout {
	if r.Concurrency <= 0 {
		r.Concurrency = 256
	}
	if r.Timeout <= 0 {
		r.Timeout = 5 * time.Second
	}
	if r.Retries < 0 {
		r.Retries = 0
	}
	if r.Backoff <= 0 {
		r.Backoff = 200 * time.Millisecond
	}
	return r
}

// Validate reports the first option out of range, naming it.
func (r Rollout) Validate() error {
	switch {
	case r.Concurrency < 0:
		return fmt.Errorf("rollout: concurrency %d is negative", r.Concurrency)
	case r.Rate < 0:
		return fmt.Errorf("rollout: rate %g is negative", r.Rate)
	case r.Canary < 0:
		return fmt.Errorf("rollout: canary %d is negative", r.Canary)
	case r.CanaryShare < 0 || r.CanaryShare > 1:
		return fmt.Errorf("rollout: canary share %g is not between 0 and 1", r.CanaryShare)
	case r.WaveSize < 0:
		return fmt.Errorf("rollout: wave size %d is negative", r.WaveSize)
	case r.MaxFailureShare < 0 || r.MaxFailureShare > 1:
		return fmt.Errorf("rollout: max failure share %g is not between 0 and 1", r.MaxFailureShare)
	case r.MaxNoMatchShare < 0 || r.MaxNoMatchShare > 1:
		return fmt.Errorf("rollout: max no-match share %g is not between 0 and 1", r.MaxNoMatchShare)
	case r.Timeout < 0, r.Backoff < 0, r.OfflineTTL < 0:
		return fmt.Errorf("rollout: durations must not be negative")
	}
	return nil
}

// waves splits n planned devices into the sizes of the rollout's waves.
func (r Rollout) waves(n int) []int {
	canary := r.Canary
	if r.CanaryShare > 0 {
		if c := int(float64(n)*r.CanaryShare + 0.5); c > canary {
			canary = c
		}
		if canary == 0 {
			canary = 1
		}
	}
	var ws []int
	if canary > 0 && canary < n {
		ws = append(ws, canary)
		n -= canary
	}
	for n > 0 {
		w := n
		if r.WaveSize > 0 && r.WaveSize < n {
			w = r.WaveSize
		}
		ws = append(ws, w)
		n -= w
	}
	return ws
}
