package notify

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"
	"time"
)

//go:embed templates/*.tmpl
var templateFiles embed.FS

// Message is an event rendered for a person: a one-line subject and a
// plain-text body.
type Message struct {
	Subject string
	Body    string
}

// Renderer turns events into Messages with the templates in templates/
// (one file per Kind, each defining "subject" and "body").
type Renderer struct {
	byKind map[Kind]*template.Template
}

// NewRenderer parses the built-in templates.
func NewRenderer() (*Renderer, error) {
	funcs := template.FuncMap{
		"ts":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"dur": humanDuration,
		"age": func(from, to time.Time) string { return humanDuration(to.Sub(from)) },
	}
	r := &Renderer{byKind: map[Kind]*template.Template{}}
	// subjectOf renders the subject of an event within another (a digest's).
	funcs["subjectOf"] = func(e Event) (string, error) {
		m, err := r.Render(e)
		return strings.TrimPrefix(m.Subject, "[Fleetvault] "), err
	}
	for _, k := range Kinds() {
		name := "templates/" + string(k) + ".tmpl"
		t, err := template.New(string(k)).Funcs(funcs).Option("missingkey=error").ParseFS(templateFiles, name)
		if err != nil {
			return nil, fmt.Errorf("notify: template %s: %w", name, err)
		}
		r.byKind[k] = t
	}
	return r, nil
}

// Render validates e and renders it.
func (r *Renderer) Render(e Event) (Message, error) {
	if err := e.Validate(); err != nil {
		return Message{}, err
	}
	t := r.byKind[e.Kind]
	var subj, body bytes.Buffer
	if err := t.ExecuteTemplate(&subj, "subject", e); err != nil {
		return Message{}, fmt.Errorf("notify: render %s subject: %w", e.Kind, err)
	}
	if err := t.ExecuteTemplate(&body, "body", e); err != nil {
		return Message{}, fmt.Errorf("notify: render %s body: %w", e.Kind, err)
	}
	// A subject is one line whatever the fields hold.
	s := strings.Join(strings.Fields(subj.String()), " ")
	return Message{Subject: s, Body: strings.TrimLeft(body.String(), "\n")}, nil
}

// humanDuration writes d for a person: "3 days 4 hours", "26 minutes".
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	if d < time.Minute {
		return plural(int(d/time.Second), "second")
	}
	units := []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}}
	var parts []string
	for _, u := range units {
		if n := int(d / u.d); n > 0 && len(parts) < 2 {
			parts = append(parts, plural(n, u.name))
			d -= time.Duration(n) * u.d
		} else if len(parts) > 0 {
			break
		}
	}
	return strings.Join(parts, " ")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
