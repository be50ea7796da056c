package bui

import (
	"net/http"
	"net/url"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
)

// certListLimit bounds the certification list.
const certListLimit = 500

// certListView is the certification page's data.
type certListView struct {
	State string // the filter: "" all, or a certification state
	Certs []apiclient.Certification
}

// certifications lists the current backups (each device's newest) of the
// person with their certification, filterable by state.
func (u *UI) certifications(rq *request) error {
	v := certListView{State: rq.r.URL.Query().Get("state")}
	var err error
	v.Certs, err = rq.ss.Certifications(rq.r.Context(), apiclient.CertificationQuery{State: v.State, Current: true, Limit: certListLimit})
	if err != nil {
		return err
	}
	return u.page(rq, http.StatusOK, "certs", "Certification", "cert", v)
}

// certView is one backup's certification page.
type certView struct {
	Cert apiclient.Certification
	Href string // the page's own address
}

func certHref(backup string) string { return "/certification/backup?id=" + url.QueryEscape(backup) }

func (u *UI) certification(rq *request) error {
	id := rq.r.URL.Query().Get("id")
	c, err := rq.ss.Certification(rq.r.Context(), id)
	if err != nil {
		return err
	}
	return u.page(rq, http.StatusOK, "cert", "Certification of "+id, "cert", certView{Cert: c, Href: certHref(id)})
}

// testRestore runs a test restore of a backup into a twin, then shows the
// evidence.
func (u *UI) testRestore(rq *request) error {
	id := rq.r.PostForm.Get("backup")
	if _, err := rq.ss.TestRestore(rq.r.Context(), id, apiclient.TestRestoreRequest{Into: apiclient.TestRestoreInto}); err != nil {
		return err
	}
	http.Redirect(rq.w, rq.r, certHref(id), http.StatusSeeOther)
	return nil
}

// decide records Certified or Not certified.
func (u *UI) decide(rq *request) error {
	f := rq.r.PostForm
	id, state := f.Get("backup"), catalog.CertNotCertified
	if f.Get("decision") == "yes" {
		state = catalog.CertCertified
	}
	if _, err := rq.ss.Certify(rq.r.Context(), id, apiclient.CertifyRequest{State: state, Note: f.Get("note")}); err != nil {
		return err
	}
	http.Redirect(rq.w, rq.r, certHref(id), http.StatusSeeOther)
	return nil
}
