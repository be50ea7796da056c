package bui

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/grouprestore"
)

// The restore wizard: what to restore (a device group, or one device) →
// which backup (the versions in the catalog) → where to and with which
// profile → a dry run ("who gets what, and why not") → start → watch on the
// job page. Each step is a GET form carrying the choices so far, so the
// browser's back button and a bookmark work, and nothing needs JavaScript.

// wizardChoice is what the person has chosen so far.
type wizardChoice struct {
	Group    string // a device group to restore
	Device   string // or one device
	Source   string // the backup group (group restore)
	AsOf     string // the version: RFC 3339, "" the newest
	Piece    string // the backup (one device)
	Dest     string // the device restored to (one device): the same, or another
	Profile  string // "" the group's default, "-" none, or a profile name
	Mismatch bool   // allow a destination whose tag differs
	Step     int    // 1 to 3: the step to show
}

func parseChoice(v url.Values) wizardChoice {
	c := wizardChoice{Group: v.Get("group"), Device: strings.TrimSpace(v.Get("device")), Piece: v.Get("piece"),
		Dest: strings.TrimSpace(v.Get("dest")), Profile: v.Get("profile"), Mismatch: v.Get("mismatch") == "on", AsOf: v.Get("asof")}
	c.Source = v.Get("source")
	if src, asof, ok := strings.Cut(v.Get("version"), "@"); ok {
		c.Source, c.AsOf = src, asof
	}
	switch {
	case c.Group == "" && c.Device == "":
		c.Step = 1
	case c.Source == "" && c.Piece == "":
		c.Step = 2
	default:
		c.Step = 3
	}
	if c.Dest == "" {
		c.Dest = c.Device
	}
	return c
}

// newJob is the restore the choice describes.
func (c wizardChoice) newJob() apiclient.NewJob {
	nj := apiclient.NewJob{Kind: string(grouprestore.KindRestore)}
	if c.Device != "" {
		nj.Device, nj.Piece, nj.AllowTagMismatch = c.Dest, c.Piece, c.Mismatch
	} else {
		nj.Source, nj.Target, nj.AsOf = c.Source, c.Group, c.AsOf
	}
	switch c.Profile {
	case "":
	case "-":
		nj.NoProfile = true
	default:
		nj.Profile = c.Profile
	}
	return nj
}

// version is one backup date of a backup group: a backup job's time.
type version struct {
	Value, Label string
	Devices      int // backups taken by the job
	Newest       bool
	time         time.Time
}

// groupVersions are the backup dates of one backup group.
type groupVersions struct {
	Group    string
	Versions []version
}

// wizardView is the wizard's data.
type wizardView struct {
	C        wizardChoice
	Groups   []apiclient.Group // device groups the person may restore
	Versions []groupVersions
	Backups  []apiclient.Backup // of the one device
	Profiles []string
	Plan     *apiclient.Plan
	Explain  []planLine
}

type planLine struct {
	grouprestore.PlanEntry
	Gets bool
}

// maxVersionPieces bounds the backups read to list a group's versions.
const maxVersionPieces = 5000

func (u *UI) wizard(rq *request) error {
	ctx := rq.r.Context()
	v := wizardView{C: parseChoice(rq.r.URL.Query())}
	var err error
	switch v.C.Step {
	case 1:
		v.Groups, err = rq.ss.ListGroups(ctx, "devices")
	case 2:
		if v.C.Device != "" {
			if _, err = rq.ss.DeviceDetail(ctx, v.C.Device, 0); err != nil {
				return err
			}
			v.Backups, err = rq.ss.Backups(ctx, apiclient.BackupQuery{Client: v.C.Device, Limit: 50})
		} else {
			v.Versions, err = u.versions(rq)
		}
	case 3:
		var ps []string
		profiles, perr := rq.ss.Profiles(ctx)
		for _, p := range profiles {
			ps = append(ps, p.Name)
		}
		v.Profiles, err = ps, perr
	}
	if err != nil {
		return err
	}
	return u.page(rq, http.StatusOK, "wizard", "Restore", "restore", v)
}

// versions lists the backup dates of every backup group the person may
// read, newest first: one per backup job.
func (u *UI) versions(rq *request) ([]groupVersions, error) {
	ctx := rq.r.Context()
	if _, err := rq.ss.Group(ctx, rq.r.URL.Query().Get("group"), false); err != nil {
		return nil, err
	}
	groups, err := rq.ss.ListGroups(ctx, "backup")
	if err != nil {
		return nil, err
	}
	var out []groupVersions
	for _, g := range groups {
		bs, err := rq.ss.Backups(ctx, apiclient.BackupQuery{Group: g.Name, Limit: maxVersionPieces})
		if err != nil {
			return nil, err
		}
		byJob := map[string]*version{}
		var times = map[string]time.Time{}
		for _, b := range bs {
			key := b.Job
			if key == "" {
				key = b.Time.Format(time.RFC3339)
			}
			ver := byJob[key]
			if ver == nil {
				ver = &version{}
				byJob[key] = ver
			}
			ver.Devices++
			if b.Time.After(times[key]) {
				times[key] = b.Time
			}
		}
		var vs []version
		for key, ver := range byJob {
			ver.time = times[key].UTC()
			// A job's "as of" has millisecond precision: round up, so the
			// version includes the backups taken in its last millisecond.
			ver.Value = g.Name + "@" + ver.time.Add(time.Millisecond-1).Truncate(time.Millisecond).Format(time.RFC3339Nano)
			ver.Label = ver.time.Format("2006-01-02 15:04:05.000 UTC")
			vs = append(vs, *ver)
		}
		sort.Slice(vs, func(a, b int) bool { return vs[a].time.After(vs[b].time) })
		if len(vs) > 0 {
			vs[0].Newest = true
			out = append(out, groupVersions{Group: g.Name, Versions: vs})
		}
	}
	return out, nil
}

func (u *UI) wizardPlan(rq *request) error {
	c := parseChoice(rq.r.PostForm)
	plan, err := rq.ss.PlanJob(rq.r.Context(), c.newJob())
	if err != nil {
		return err
	}
	v := wizardView{C: c, Plan: &plan}
	v.C.Step = 4
	for _, e := range plan.Entries {
		v.Explain = append(v.Explain, planLine{PlanEntry: e, Gets: e.State == grouprestore.WouldRestore})
	}
	return u.page(rq, http.StatusOK, "wizard", "Restore: dry run", "restore", v)
}

func (u *UI) wizardStart(rq *request) error {
	c := parseChoice(rq.r.PostForm)
	j, err := rq.ss.StartJob(rq.r.Context(), c.newJob())
	if err != nil {
		return err
	}
	http.Redirect(rq.w, rq.r, "/jobs/"+j.ID, http.StatusSeeOther)
	return nil
}
