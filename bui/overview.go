package bui

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/fleetvault/fleetvault/service"
)

// PageSize is how many devices the overview shows per page.
const PageSize = 100

// overviewQuery is the overview's sorting, filtering and paging, all in
// the query string so it works without JavaScript.
type overviewQuery struct {
	Sort   string // device, status, backup, rpo, cert, restore
	Desc   bool
	Status string // "" all, or a service protection state
	Q      string // part of the device id, category or domain
	Page   int    // from 1
}

func parseOverviewQuery(v url.Values) overviewQuery {
	q := overviewQuery{Sort: v.Get("sort"), Desc: v.Get("dir") == "desc", Status: v.Get("status"), Q: strings.TrimSpace(v.Get("q"))}
	switch q.Sort {
	case "device", "status", "backup", "rpo", "cert", "restore":
	default:
		q.Sort = "status"
	}
	switch q.Status {
	case service.Protected, service.NotProtected, service.Unknown:
	default:
		q.Status = ""
	}
	q.Page, _ = strconv.Atoi(v.Get("page"))
	q.Page = max(q.Page, 1)
	return q
}

// link is the overview's URL with q changed by fn.
func (q overviewQuery) link(fn func(*overviewQuery)) string {
	c := q
	fn(&c)
	v := url.Values{}
	v.Set("sort", c.Sort)
	if c.Desc {
		v.Set("dir", "desc")
	}
	if c.Status != "" {
		v.Set("status", c.Status)
	}
	if c.Q != "" {
		v.Set("q", c.Q)
	}
	if c.Page > 1 {
		v.Set("page", strconv.Itoa(c.Page))
	}
	return "/?" + v.Encode()
}

// column is a sortable column header.
type column struct {
	Key, Label, Href string
	Sorted           string // "ascending", "descending" or "" (aria-sort)
}

// overviewView is the overview's data.
type overviewView struct {
	Query                             overviewQuery
	Total, Protected, NotProt, Unkn   int
	Shown                             int
	Rows                              []service.DeviceProtection
	Columns                           []column
	Page, Pages                       int
	PrevHref, NextHref                string
	AllHref, ProtHref, NotHref, UHref string
}

func (u *UI) overview(rq *request) error {
	all, err := rq.ss.Protection(rq.r.Context())
	if err != nil {
		return err
	}
	return u.page(rq, 200, "overview", "Am I protected?", "overview", buildOverview(all, parseOverviewQuery(rq.r.URL.Query())))
}

// buildOverview counts, filters, sorts and pages the devices.
func buildOverview(all []service.DeviceProtection, q overviewQuery) overviewView {
	v := overviewView{Query: q, Total: len(all)}
	rows := make([]service.DeviceProtection, 0, len(all))
	needle := strings.ToLower(q.Q)
	for _, d := range all {
		switch d.Status {
		case service.Protected:
			v.Protected++
		case service.NotProtected:
			v.NotProt++
		default:
			v.Unkn++
		}
		if q.Status != "" && d.Status != q.Status {
			continue
		}
		if needle != "" && !strings.Contains(strings.ToLower(d.Device+" "+d.Category+" "+d.Domain), needle) {
			continue
		}
		rows = append(rows, d)
	}
	slices.SortStableFunc(rows, func(a, b service.DeviceProtection) int {
		c := compareBy(q.Sort, a, b)
		if c == 0 {
			c = strings.Compare(a.Device, b.Device)
		}
		if q.Desc {
			return -c
		}
		return c
	})
	v.Shown = len(rows)
	v.Pages = max((len(rows)+PageSize-1)/PageSize, 1)
	v.Page = min(q.Page, v.Pages)
	lo := (v.Page - 1) * PageSize
	v.Rows = rows[lo:min(lo+PageSize, len(rows))]
	if v.Page > 1 {
		v.PrevHref = q.link(func(c *overviewQuery) { c.Page = v.Page - 1 })
	}
	if v.Page < v.Pages {
		v.NextHref = q.link(func(c *overviewQuery) { c.Page = v.Page + 1 })
	}
	for _, st := range []struct {
		href   *string
		status string
	}{{&v.AllHref, ""}, {&v.ProtHref, service.Protected}, {&v.NotHref, service.NotProtected}, {&v.UHref, service.Unknown}} {
		*st.href = q.link(func(c *overviewQuery) { c.Status, c.Page = st.status, 1 })
	}
	for _, c := range []struct{ key, label string }{
		{"device", "Device"}, {"status", "Protected?"}, {"backup", "Last backup"}, {"rpo", "RPO"}, {"cert", "Certification"}, {"restore", "Last restore"},
	} {
		col := column{Key: c.key, Label: c.label}
		desc := false
		if q.Sort == c.key {
			col.Sorted = "ascending"
			if q.Desc {
				col.Sorted = "descending"
			}
			desc = !q.Desc
		}
		col.Href = q.link(func(o *overviewQuery) { o.Sort, o.Desc, o.Page = c.key, desc, 1 })
		v.Columns = append(v.Columns, col)
	}
	return v
}

// statusRank orders the worst first: not protected, unknown, protected.
func statusRank(s string) int {
	switch s {
	case service.NotProtected:
		return 0
	case service.Unknown:
		return 1
	}
	return 2
}

func compareBy(key string, a, b service.DeviceProtection) int {
	switch key {
	case "status":
		return cmp.Compare(statusRank(a.Status), statusRank(b.Status))
	case "backup":
		return a.LastBackupTime.Compare(b.LastBackupTime)
	case "rpo":
		return strings.Compare(a.RPOState, b.RPOState)
	case "cert":
		return strings.Compare(a.Cert, b.Cert)
	case "restore":
		ta, tb := a.LastRestore, b.LastRestore
		switch {
		case ta == nil && tb == nil:
			return 0
		case ta == nil:
			return -1
		case tb == nil:
			return 1
		}
		return ta.Time.Compare(tb.Time)
	}
	return strings.Compare(a.Device, b.Device)
}
