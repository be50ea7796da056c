package grouprestore

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
)

var (
	_ AsOfCatalog     = (*CatalogStore)(nil)
	_ DeviceDirectory = (*CatalogStore)(nil)
)

// CandidatesAsOf returns the piece of each client of a backup group that was
// current at t.
func (s *CatalogStore) CandidatesAsOf(_ context.Context, group string, t time.Time) ([]Piece, error) {
	ps, err := s.c.CandidatesAsOf(group, t)
	if err != nil {
		return nil, err
	}
	return toPieces(ps), nil
}

// Device resolves one device as Members resolves each member (DR rewrite
// included).
func (s *CatalogStore) Device(_ context.Context, id string) (Target, error) {
	d, err := s.c.Device(id)
	if err != nil {
		return Target{}, err
	}
	return s.target(d)
}

// target is a device of the resource database as the engine sees it: its
// identifier (rewritten in DR mode) and its registered tag.
func (s *CatalogStore) target(d catalog.Device) (Target, error) {
	id := d.ID
	ident, err := DeviceIdentifier(d.ID, d.Identifier)
	if err != nil {
		return Target{}, err
	}
	if ident, err = s.c.RewriteForSite(ident); err != nil {
		return Target{}, fmt.Errorf("device %s: %w", id, err)
	}
	tag, err := d.RegisteredTag()
	if err != nil {
		return Target{}, err
	}
	return Target{ID: id, Ident: ident, Tag: tag}, nil
}
