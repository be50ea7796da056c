package catalog

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/bbolt"
)

// KeepRule is a retention policy for the pieces of one client or of the
// clients of one backup group, with the semantics of restic 0.14's forget
// (see keepers): of each series (one client's pieces of one name, newest
// first) it keeps the Last newest pieces, and the newest piece of each of
// the Hourly, Daily, Weekly (ISO weeks), Monthly and Yearly newest periods
// that have one, periods taken in UTC. A piece is kept if any count keeps
// it. A rule with every count 0 keeps everything (restic: "policy is
// empty"). A client rule wins over a group rule; a series with no rule keeps
// every piece. Expired pieces (Expiry before now) go whatever the rule.
type KeepRule struct {
	Client  string `json:"client,omitempty"`
	Group   string `json:"group,omitempty"`
	Last    int    `json:"last,omitempty"`
	Hourly  int    `json:"hourly,omitempty"`
	Daily   int    `json:"daily,omitempty"`
	Weekly  int    `json:"weekly,omitempty"`
	Monthly int    `json:"monthly,omitempty"`
	Yearly  int    `json:"yearly,omitempty"`
}

func (r KeepRule) String() string {
	scope := "client " + r.Client
	if r.Client == "" {
		scope = "group " + r.Group
	}
	return fmt.Sprintf("%s: keep last %d, hourly %d, daily %d, weekly %d, monthly %d, yearly %d", scope, r.Last, r.Hourly, r.Daily, r.Weekly, r.Monthly, r.Yearly)
}

// empty reports whether no count is set: such a rule keeps everything.
func (r KeepRule) empty() bool {
	return r.Last == 0 && r.Hourly == 0 && r.Daily == 0 && r.Weekly == 0 && r.Monthly == 0 && r.Yearly == 0
}

func (r KeepRule) validate() error {
	if (r.Client == "") == (r.Group == "") {
		return fmt.Errorf("catalog: keep rule: %w: name exactly one of client or group", ErrInvalid)
	}
	if r.Last < 0 || r.Hourly < 0 || r.Daily < 0 || r.Weekly < 0 || r.Monthly < 0 || r.Yearly < 0 {
		return fmt.Errorf("catalog: keep rule %s: %w: negative count", r, ErrInvalid)
	}
	return nil
}

func (r KeepRule) key() []byte {
	if r.Client != "" {
		return []byte("client\x00" + r.Client)
	}
	return []byte("group\x00" + r.Group)
}

// SetKeepRules stores keep rules in the resource database, replacing rules
// for the same client or group.
func (c *Catalog) SetKeepRules(rules []KeepRule) error {
	if err := c.writable(); err != nil {
		return err
	}
	for _, r := range rules {
		if err := r.validate(); err != nil {
			return err
		}
	}
	return update(c.res, "catalog: set keep rules", func(tx *bbolt.Tx) error {
		recs := c.resRecords(tx)
		for _, r := range rules {
			if err := recs.put(bktRetention, r.key(), r); err != nil {
				return err
			}
		}
		return nil
	})
}

// KeepRules returns the stored keep rules.
func (c *Catalog) KeepRules() ([]KeepRule, error) {
	var rules []KeepRule
	err := view(c.res, "catalog: keep rules", func(tx *bbolt.Tx) error {
		return c.resRecords(tx).each(bktRetention, func(_ []byte, decode func(any) error) error {
			var r KeepRule
			if err := decode(&r); err != nil {
				return fmt.Errorf("catalog: keep rules: %w", err)
			}
			rules = append(rules, r)
			return nil
		})
	})
	return rules, err
}

// PrunedPiece is a piece Prune removed (or would remove), and why.
type PrunedPiece struct {
	Piece
	Reason string
}

// PruneReport says what Prune did.
type PruneReport struct {
	DryRun  bool
	Removed []PrunedPiece
	Kept    int
	// Protected are kept pieces that expiry or the keep rule would have
	// removed, and why they stayed (counted in Kept too).
	Protected []PrunedPiece
	Freed     int64 // content bytes reclaimed (0 in a dry run)
}

// Prune applies expiry dates and keep rules: it removes pieces that expired
// or that no rule keeps, and releases their content (freed when no other
// piece refers to it). With dryRun it only reports what would go.
//
// Whatever expiry or the rule say, a client's newest certified piece stays
// (docs/spec/catalog.md, "Certification"): a backup a data owner certified
// is not pruned while it is the newest certified one of its device. The
// scheduled retention calls Prune too, so this is the one place of that rule.
func (c *Catalog) Prune(ctx context.Context, rules []KeepRule, dryRun bool) (PruneReport, error) {
	return c.prune(ctx, rules, dryRun, "")
}

// PruneGroup is Prune limited to the series of backup group group (those
// whose newest piece is in it, as the group's keep rule sees them): what a
// schedule applies after its backup, and what its preview (dryRun) shows.
// The rules are chosen as Prune chooses them, so a client rule still wins.
func (c *Catalog) PruneGroup(ctx context.Context, group string, rules []KeepRule, dryRun bool) (PruneReport, error) {
	if group == "" {
		return PruneReport{DryRun: dryRun}, fmt.Errorf("catalog: prune a backup group: %w: no group named", ErrInvalid)
	}
	return c.prune(ctx, rules, dryRun, group)
}

// prune is Prune over every series, or over those of group when it is set.
func (c *Catalog) prune(ctx context.Context, rules []KeepRule, dryRun bool, group string) (PruneReport, error) {
	rep := PruneReport{DryRun: dryRun}
	if !dryRun {
		if err := c.writable(); err != nil {
			return rep, err
		}
	}
	for _, r := range rules {
		if err := r.validate(); err != nil {
			return rep, err
		}
	}
	now := c.opts.Now()
	certs, err := c.Certifications()
	if err != nil {
		return rep, fmt.Errorf("catalog: prune: read certifications: %w", err)
	}
	for _, s := range c.shards {
		var series map[string][]Piece
		err := view(s.db, "catalog: prune "+s.label(), func(tx *bbolt.Tx) error {
			var err error
			series, err = s.series(tx)
			return err
		})
		if err != nil {
			return rep, err
		}
		var gone []PrunedPiece
		keepCertified := newestCertified(series, certs) // a client's pieces are all in one catalog
		for _, ps := range series {
			if group != "" && ps[0].Group != group {
				continue
			}
			g, kept, protected := decide(ps, pickRule(rules, ps), now, keepCertified)
			gone = append(gone, g...)
			rep.Kept += kept
			rep.Protected = append(rep.Protected, protected...)
		}
		sort.Slice(rep.Protected, func(i, j int) bool { return rep.Protected[i].ID < rep.Protected[j].ID })
		sort.Slice(gone, func(i, j int) bool { return gone[i].ID < gone[j].ID })
		rep.Removed = append(rep.Removed, gone...)
		if dryRun {
			continue
		}
		freed, err := c.remove(ctx, s, gone)
		rep.Freed += freed
		if err != nil {
			return rep, err
		}
		if err := c.dropCertifications(gone, certs); err != nil {
			return rep, err
		}
	}
	c.log.Info("catalog pruned", "group", group, "removed", len(rep.Removed), "kept", rep.Kept, "freed", rep.Freed, "dry_run", dryRun)
	return rep, nil
}

// series reads every piece, grouped by client and name, newest first.
func (s *shard) series(tx *bbolt.Tx) (map[string][]Piece, error) {
	out := map[string][]Piece{}
	err := s.eachPiece(tx, func(p Piece) error {
		id := p.Client + "\x00" + p.Name
		out[id] = append(out[id], p)
		return nil
	})
	for _, ps := range out {
		sortNewest(ps)
	}
	return out, err
}

func pickRule(rules []KeepRule, ps []Piece) *KeepRule {
	var group *KeepRule
	for i, r := range rules {
		if r.Client != "" && r.Client == ps[0].Client {
			return &rules[i]
		}
		if r.Group != "" && r.Group == ps[0].Group && group == nil {
			group = &rules[i]
		}
	}
	return group
}

// decide splits a series into removed pieces and a kept count, and lists
// the pieces kept only because they are their client's newest certified
// one (keepCertified: client -> piece id).
func decide(ps []Piece, rule *KeepRule, now time.Time, keepCertified map[string]string) (gone []PrunedPiece, kept int, protected []PrunedPiece) {
	sortForRetention(ps)
	var keep []bool
	if rule != nil {
		keep = Keepers(*rule, pieceTimes(ps))
	}
	for i, p := range ps {
		var why string
		switch {
		case !p.Expiry.IsZero() && p.Expiry.Before(now):
			why = "expired " + p.Expiry.Format(time.RFC3339)
		case keep != nil && !keep[i]:
			why = "not kept by " + rule.String()
		}
		switch {
		case why == "":
			kept++
		case keepCertified[p.Client] == p.ID:
			kept++
			protected = append(protected, PrunedPiece{p, "kept: the newest certified backup of " + p.Client + " (else " + why + ")"})
		default:
			gone = append(gone, PrunedPiece{p, why})
		}
	}
	return gone, kept, protected
}

// remove deletes pieces, a transaction per 10,000 clients' worth.
func (c *Catalog) remove(ctx context.Context, s *shard, gone []PrunedPiece) (int64, error) {
	byClient := map[string]map[string]bool{}
	var clients []string
	for _, p := range gone {
		_, key, err := c.lookupID(p.ID)
		if err != nil {
			return 0, err
		}
		if byClient[p.Client] == nil {
			byClient[p.Client] = map[string]bool{}
			clients = append(clients, p.Client)
		}
		byClient[p.Client][string(key)] = true
	}
	sort.Strings(clients)
	var freed int64
	for len(clients) > 0 {
		if err := ctx.Err(); err != nil {
			return freed, err
		}
		n := min(len(clients), 10000)
		part := clients[:n]
		clients = clients[n:]
		var f int64
		err := update(s.db, "catalog: prune "+s.label(), func(tx *bbolt.Tx) error {
			f = 0
			for _, client := range part {
				n, err := c.pruneClient(tx, client, byClient[client])
				if err != nil {
					return fmt.Errorf("client %s: %w", client, err)
				}
				f += n
			}
			return nil
		})
		if err != nil {
			return freed, fmt.Errorf("catalog: prune %s: %w", s.label(), err)
		}
		freed += f
	}
	return freed, nil
}
