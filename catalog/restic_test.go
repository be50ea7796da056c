package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/tagmatch"
)

// resticRules are the keep-rule combinations the cross-check runs.
var resticRules = []KeepRule{
	{Last: 5},
	{Hourly: 10, Daily: 7},
	{Daily: 10, Weekly: 6, Monthly: 6},
	{Weekly: 8, Monthly: 12, Yearly: 3},
	{Last: 2, Hourly: 3, Daily: 5, Weekly: 4, Monthly: 6, Yearly: 2},
	{Monthly: 30},
	{Yearly: 1, Hourly: 40},
}

// resticHistory returns n irregular backup times (whole seconds, as
// `restic backup --time` takes them) over two years, newest first: half of
// them in the last weeks, minutes to days apart (for the hourly, daily and
// weekly counts, across week and month ends), half scattered over the two
// years in bursts of one to three (for the monthly and yearly counts), and
// a few exact duplicates.
func resticHistory(rng *rand.Rand, n int) []time.Time {
	start, end := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 12, 31, 18, 0, 0, 0, time.UTC)
	var ts []time.Time
	add := func(at time.Time) {
		if len(ts) < n {
			ts = append(ts, at.Truncate(time.Second))
		}
		if rng.IntN(12) == 0 && len(ts) < n {
			ts = append(ts, ts[len(ts)-1]) // equal times
		}
	}
	for at := end; len(ts) < n/2; {
		add(at)
		// log-uniform gap between 5 minutes and 3 days
		gap := 5 * time.Minute * time.Duration(math.Exp(rng.Float64()*math.Log(864)))
		at = at.Add(-gap - time.Duration(rng.IntN(60))*time.Second)
	}
	for len(ts) < n {
		at := start.Add(time.Duration(rng.Int64N(int64(end.Sub(start)))))
		for k := 1 + rng.IntN(3); k > 0; k-- {
			add(at)
			at = at.Add(time.Duration(1+rng.IntN(90)) * time.Minute)
		}
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return b.Compare(a) })
	return ts
}

// TestRetentionMatchesRestic: for the same backup times, Prune keeps exactly
// the snapshots `restic forget --dry-run --json --keep-...` keeps, for every
// rule of resticRules, per series (a restic host, a Fleetvault client).
// Pieces of equal time are told apart by time only: which of them is kept is
// each tool's own order, the number kept is the same.
func TestRetentionMatchesRestic(t *testing.T) {
	restic, err := exec.LookPath("restic")
	if err != nil {
		t.Skip("restic is not installed (make test installs it)")
	}
	// Each `restic backup` costs about half a CPU second (its key
	// derivation): 48 snapshots take about 15 s on two cores.
	perSeries := 24
	if !testing.Short() {
		perSeries = 200
	}
	rng := rand.New(rand.NewPCG(12, 2026))
	series := map[string][]time.Time{"north": resticHistory(rng, perSeries), "south": resticHistory(rng, perSeries)}

	r := newResticRepo(t, restic)
	var jobs []resticSnapshot
	for host, ts := range series {
		for _, at := range ts {
			jobs = append(jobs, resticSnapshot{host, at})
		}
	}
	began := time.Now()
	r.backupAll(t, jobs, 4)
	t.Logf("made %d restic snapshots in %v (4 at a time)", len(jobs), time.Since(began).Round(time.Millisecond))

	c, _ := mustCreate(t, Options{Now: func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }})
	var ps []NewPiece
	for host, ts := range series {
		for i, at := range ts {
			ps = append(ps, NewPiece{Client: host, Name: "settings", Group: "model-house", Time: at,
				Tag: tagmatch.Tag{{Key: "zone", Value: host}}, Content: []byte(host + strconv.Itoa(i))})
		}
	}
	mustIngest(t, c, ps)

	for _, rule := range resticRules {
		rule.Group = "model-house"
		t.Run(rule.String(), func(t *testing.T) {
			want := r.forget(t, rule)
			got := keptByPrune(t, c, rule)
			for host := range series {
				if !slices.EqualFunc(got[host], want[host], time.Time.Equal) {
					t.Errorf("%s: Fleetvault keeps %d, restic %d\nfleetvault: %v\nrestic:     %v", host, len(got[host]), len(want[host]), got[host], want[host])
				}
			}
		})
	}
}

// keptByPrune returns the times a dry-run Prune keeps, per client, newest first.
func keptByPrune(t *testing.T, c *Catalog, rule KeepRule) map[string][]time.Time {
	t.Helper()
	rep, err := c.Prune(context.Background(), []KeepRule{rule}, true)
	if err != nil {
		t.Fatal(err)
	}
	removed := map[string]bool{}
	for _, p := range rep.Removed {
		removed[p.ID] = true
	}
	all, err := c.Pieces(Query{})
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string][]time.Time{}
	for _, p := range all {
		if !removed[p.ID] {
			kept[p.Client] = append(kept[p.Client], p.Time)
		}
	}
	for _, ts := range kept {
		slices.SortFunc(ts, func(a, b time.Time) int { return b.Compare(a) })
	}
	return kept
}

type resticSnapshot struct {
	host string
	at   time.Time
}

// resticRepo is a restic repository in a temporary directory.
type resticRepo struct {
	bin, data string
	env       []string
}

func newResticRepo(t *testing.T, bin string) *resticRepo {
	t.Helper()
	dir := t.TempDir()
	r := &resticRepo{bin: bin, data: filepath.Join(dir, "data")}
	must(t, os.MkdirAll(r.data, 0o755))
	must(t, os.WriteFile(filepath.Join(r.data, "settings.json"), []byte(`{"setpoint":21}`), 0o644))
	r.env = append(os.Environ(), "RESTIC_PASSWORD=fleetvault-test", "RESTIC_REPOSITORY="+filepath.Join(dir, "repo"),
		"RESTIC_CACHE_DIR="+filepath.Join(dir, "cache"), "TZ=UTC")
	r.run(t, "init")
	return r
}

func (r *resticRepo) run(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), r.bin, append([]string{"--no-cache", "-q"}, args...)...)
	cmd.Env = r.env
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("restic %s: %v: %s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// backupAll makes one snapshot per job, workers restic processes at a time
// (restic's locks let backups into one repository run side by side).
func (r *resticRepo) backupAll(t *testing.T, jobs []resticSnapshot, workers int) {
	t.Helper()
	ch := make(chan resticSnapshot)
	var wg sync.WaitGroup
	errs := make(chan error, len(jobs))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				cmd := exec.CommandContext(t.Context(), r.bin, "--no-cache", "-q", "backup", "--host", j.host,
					"--time", j.at.Format("2006-01-02 15:04:05"), r.data)
				cmd.Env = r.env
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- fmt.Errorf("restic backup %s %v: %v: %s", j.host, j.at, err, out)
				}
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// forget runs restic forget --dry-run --json with rule and returns the kept
// times per host, newest first.
func (r *resticRepo) forget(t *testing.T, rule KeepRule) map[string][]time.Time {
	t.Helper()
	args := []string{"forget", "--dry-run", "--json", "--group-by", "host"}
	for _, f := range []struct {
		flag string
		n    int
	}{{"--keep-last", rule.Last}, {"--keep-hourly", rule.Hourly}, {"--keep-daily", rule.Daily},
		{"--keep-weekly", rule.Weekly}, {"--keep-monthly", rule.Monthly}, {"--keep-yearly", rule.Yearly}} {
		if f.n > 0 {
			args = append(args, f.flag, strconv.Itoa(f.n))
		}
	}
	var groups []struct {
		Host string `json:"host"`
		Keep []struct {
			Time time.Time `json:"time"`
		} `json:"keep"`
	}
	out := r.run(t, args...)
	if err := json.Unmarshal(out, &groups); err != nil {
		t.Fatalf("restic forget output: %v: %s", err, out)
	}
	kept := map[string][]time.Time{}
	for _, g := range groups {
		for _, k := range g.Keep {
			kept[g.Host] = append(kept[g.Host], k.Time.UTC())
		}
	}
	for _, ts := range kept {
		slices.SortFunc(ts, func(a, b time.Time) int { return b.Compare(a) })
	}
	return kept
}
