package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// fieldNames are the five fields of a standard cron expression, in order.
var fieldNames = [5]string{"minute", "hour", "day of month", "month", "day of week"}

// ErrInvalid marks a cron expression or an argument that cannot be used.
var ErrInvalid = errors.New("invalid")

// ParseError is a cron expression that does not parse. Field names the
// faulty field ("minute", "hour", "day of month", "month", "day of week"),
// or is empty when the expression as a whole is wrong (field count, an
// unknown descriptor, a bad time zone).
type ParseError struct {
	Expr  string
	Field string
	Err   error
}

func (e *ParseError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("schedule: cron expression %q: %v", e.Expr, e.Err)
	}
	return fmt.Sprintf("schedule: cron expression %q: %s field: %v", e.Expr, e.Field, e.Err)
}

// Unwrap makes a ParseError match ErrInvalid.
func (e *ParseError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// Cron is a parsed cron expression. Its zero value is not usable.
type Cron struct {
	expr  string
	sched cron.Schedule
}

// String returns the expression as written.
func (c Cron) String() string { return c.expr }

// Next returns the first time strictly after t at which the expression
// fires, or the zero time if it never fires again (a 30 February).
func (c Cron) Next(t time.Time) time.Time { return c.sched.Next(t) }

// parser accepts the standard five fields and descriptors (@daily, @hourly,
// @weekly, @monthly, @yearly, @every 1h).
func parser() cron.Parser {
	return cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
}

// Parse reads a cron expression: five fields (minute hour day-of-month month
// day-of-week, as in crontab(5), with names like MON and JAN) or a
// descriptor (@yearly, @monthly, @weekly, @daily, @midnight, @hourly,
// @every DURATION). Expressions are evaluated in UTC unless they start with
// CRON_TZ=Zone (an IANA zone name). A bad expression gives a *ParseError
// naming the field.
func Parse(expr string) (Cron, error) {
	spec := strings.TrimSpace(expr)
	if spec == "" {
		return Cron{}, &ParseError{Expr: expr, Err: errors.New("empty expression")}
	}
	if !strings.HasPrefix(spec, "CRON_TZ=") && !strings.HasPrefix(spec, "TZ=") {
		spec = "CRON_TZ=UTC " + spec
	}
	s, err := parser().Parse(spec)
	if err != nil {
		return Cron{}, &ParseError{Expr: expr, Field: faultyField(spec), Err: err}
	}
	if next := s.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)); next.IsZero() {
		return Cron{}, &ParseError{Expr: expr, Err: errors.New("never fires (no such date)")}
	}
	return Cron{expr: expr, sched: s}, nil
}

// faultyField finds the first of five fields that fails on its own (the
// others replaced by "*"); robfig/cron's errors do not say which one.
func faultyField(spec string) string {
	fields := strings.Fields(spec)
	if len(fields) != 6 { // CRON_TZ= plus five
		return ""
	}
	p := parser()
	if _, err := p.Parse(fields[0] + " * * * * *"); err != nil {
		return "" // the time zone
	}
	for i := range 5 {
		probe := []string{fields[0], "*", "*", "*", "*", "*"}
		probe[i+1] = fields[i+1]
		if _, err := p.Parse(strings.Join(probe, " ")); err != nil {
			return fieldNames[i]
		}
	}
	return ""
}
