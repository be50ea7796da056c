package bui

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
)

// statsWindows are the periods the statistics page offers, in days.
func statsWindows() []int { return []int{7, 30, 365} }

// statsView is the statistics page's data.
type statsView struct {
	Days    int
	Windows []int
	Stats   apiclient.Stats
	Charts  []template.HTML
	CSVHref string
}

// statsQuery reads the period (?days=7|30|365, default 30).
func (u *UI) statsQuery(r *http.Request) (apiclient.StatsQuery, int) {
	days, _ := strconv.Atoi(r.URL.Query().Get("days"))
	ok := false
	for _, w := range statsWindows() {
		ok = ok || w == days
	}
	if !ok {
		days = 30
	}
	now := u.now().UTC()
	return apiclient.StatsQuery{Since: now.AddDate(0, 0, -(days - 1)), Until: now}, days
}

func (u *UI) stats(rq *request) error {
	q, days := u.statsQuery(rq.r)
	st, err := rq.ss.Stats(rq.r.Context(), q)
	if err != nil {
		return err
	}
	v := statsView{Days: days, Windows: statsWindows(), Stats: st, CSVHref: fmt.Sprintf("/stats.csv?days=%d", days)}
	v.Charts = statsCharts(st, q.Since, days)
	return u.page(rq, http.StatusOK, "stats", "Statistics", "stats", v)
}

// statsCSV downloads the period's statistics as CSV (the API's format).
func (u *UI) statsCSV(rq *request) error {
	q, days := u.statsQuery(rq.r)
	st, err := rq.ss.Stats(rq.r.Context(), q)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := st.WriteCSV(&buf); err != nil {
		return err
	}
	rq.w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	rq.w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="fleetvault-stats-%dd.csv"`, days))
	_, _ = rq.w.Write(buf.Bytes())
	return nil
}

// statsCharts draws success rate, volume and restore durations for every
// day of the period (days without history count zero).
func statsCharts(st apiclient.Stats, since time.Time, days int) []template.HTML {
	byDay := map[string]apiclient.StatsRow{}
	for _, r := range st.Days {
		byDay[r.Day] = r
	}
	rate := series{Title: "Success rate of backups and restores", Max: 1, Class: "bar-rate", Format: func(v float64) string { return fmt.Sprintf("%.0f %%", 100*v) }}
	vol := series{Title: "Data backed up", Class: "bar-volume", Format: bytesText}
	dur := series{Title: "Average restore duration", Class: "bar-restore", Format: func(v float64) string { return fmt.Sprintf("%.1f s", v) }}
	for i := 0; i < days; i++ {
		day := since.AddDate(0, 0, i).Format(time.DateOnly)
		r := byDay[day]
		avg := 0.0
		if r.RestoreAttempts > 0 {
			avg = r.RestoreSecondsTotal / float64(r.RestoreAttempts)
		}
		for _, s := range []*series{&rate, &vol, &dur} {
			s.Labels = append(s.Labels, day)
		}
		rate.Values = append(rate.Values, r.SuccessRate)
		vol.Values = append(vol.Values, float64(r.BytesBackedUp))
		dur.Values = append(dur.Values, avg)
	}
	return []template.HTML{rate.svg(), vol.svg(), dur.svg()}
}

// bytesText writes a byte count as a person reads it.
func bytesText(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.1f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}
