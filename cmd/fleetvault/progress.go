package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fleetvault/fleetvault/grouprestore"
)

// progressBar draws a job's progress in place on a terminal; on anything
// else it draws nothing (logs and scripts want the final report only).
type progressBar struct {
	w  io.Writer
	on bool
}

func newProgressBar(w io.Writer) *progressBar { return &progressBar{w: w, on: isTerminal(w)} }

// draw renders p on one line: a bar, counts per state, rate and time left.
func (b *progressBar) draw(p grouprestore.Progress) {
	if !b.on {
		return
	}
	const width = 24
	filled := 0
	if p.Total > 0 {
		filled = width * p.Done / p.Total
	}
	var counts []string
	for _, s := range grouprestore.FinalStates {
		if n := p.Counts[s]; n > 0 {
			counts = append(counts, fmt.Sprintf("%s %d", s, n))
		}
	}
	eta := ""
	if p.Remaining > 0 {
		eta = "  " + p.Remaining.Round(time.Second).String() + " left"
	}
	fmt.Fprintf(b.w, "\r\x1b[K[%s%s] %d/%d  %s  %.0f/s%s", strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		p.Done, p.Total, strings.Join(counts, "  "), p.PerSecond, eta)
}

// end finishes the line the bar was drawn on.
func (b *progressBar) end() {
	if b.on {
		fmt.Fprintln(b.w)
	}
}

// follow draws j's progress until it ends or ctx ends.
func follow(ctx context.Context, j *grouprestore.Job, w io.Writer) (grouprestore.Progress, error) {
	bar := newProgressBar(w)
	ch, stop := j.Watch(200 * time.Millisecond)
	defer stop()
	for {
		select {
		case p, ok := <-ch:
			if !ok {
				bar.end()
				return j.Progress(), nil
			}
			bar.draw(p)
		case <-ctx.Done():
			bar.end()
			return j.Progress(), ctx.Err()
		}
	}
}

// countsLine renders the counts of the final states that occurred, in order.
func countsLine(counts map[grouprestore.State]int) string {
	var parts []string
	for _, s := range append([]grouprestore.State{grouprestore.WouldRestore}, grouprestore.FinalStates...) {
		if n := counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}
