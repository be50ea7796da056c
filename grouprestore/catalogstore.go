package grouprestore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/catalog/dedupe"
	"github.com/fleetvault/fleetvault/identifiers"
)

// CatalogStore adapts the bbolt catalog to the engine's Catalog and Directory.
type CatalogStore struct {
	c *catalog.Catalog
}

var (
	_ Catalog   = (*CatalogStore)(nil)
	_ Directory = (*CatalogStore)(nil)
)

// NewCatalogStore wraps c.
func NewCatalogStore(c *catalog.Catalog) *CatalogStore { return &CatalogStore{c: c} }

func toPieces(ps []catalog.Piece) []Piece {
	out := make([]Piece, len(ps))
	for i, p := range ps {
		out[i] = toPiece(p)
	}
	return out
}

func toPiece(p catalog.Piece) Piece {
	return Piece{ID: p.ID, Client: p.Client, Tag: p.Tag, Hash: p.Ref.String()}
}

// Candidates returns the newest piece of each client of a backup group.
func (s *CatalogStore) Candidates(_ context.Context, group string) ([]Piece, error) {
	ps, err := s.c.Candidates(group)
	if err != nil {
		return nil, err
	}
	return toPieces(ps), nil
}

// Piece returns one piece by id.
func (s *CatalogStore) Piece(_ context.Context, id string) (Piece, error) {
	p, err := s.c.Piece(id)
	if err != nil {
		return Piece{}, err
	}
	return toPiece(p), nil
}

// Content returns settings by their hash; the catalog checks the hash on read.
func (s *CatalogStore) Content(_ context.Context, hash string) ([]byte, error) {
	ref, err := dedupe.ParseRef(hash)
	if err != nil {
		return nil, err
	}
	return s.c.Content(ref)
}

// Store ingests pieces in one batch (one transaction per catalog). A piece
// of a device that has a data owner carries that owner (piece_owner).
func (s *CatalogStore) Store(ctx context.Context, nps []NewPiece) ([]Piece, error) {
	clients := make([]string, len(nps))
	for i, np := range nps {
		clients[i] = np.Client
	}
	owners, err := s.c.DeviceOwners(clients)
	if err != nil {
		return nil, err
	}
	in := make([]catalog.NewPiece, len(nps))
	for i, np := range nps {
		in[i] = catalog.NewPiece{Client: np.Client, Name: "settings", Type: np.Type, Location: np.Location, Owner: owners[np.Client],
			Group: np.Group, Job: np.Job, Time: np.Time, Tag: np.Tag, Content: np.Settings}
	}
	ps, err := s.c.Ingest(ctx, in)
	if err != nil {
		return nil, err
	}
	return toPieces(ps), nil
}

// JobPiece returns the newest piece of type typ that job stored for client
// at or after since: one walk of the client's chain, newest first.
func (s *CatalogStore) JobPiece(_ context.Context, job, client, typ string, since time.Time) (Piece, bool, error) {
	ps, err := s.c.Pieces(catalog.Query{Client: client, From: since})
	if err != nil {
		return Piece{}, false, err
	}
	for _, p := range ps {
		if p.Job == job && p.Type == typ {
			return toPiece(p), true, nil
		}
	}
	return Piece{}, false, nil
}

// RecordRestores appends to the catalog's restore history.
func (s *CatalogStore) RecordRestores(ctx context.Context, rs []RestoreRecord) error {
	evs := make([]catalog.RestoreEvent, len(rs))
	for i, r := range rs {
		evs[i] = catalog.RestoreEvent{Device: r.Device, PieceID: r.Piece, Ref: r.Hash, Job: r.Job, Time: r.Time, Outcome: string(r.State), Detail: r.Reason}
	}
	return s.c.RecordRestores(ctx, evs)
}

// Members resolves a device group to its devices and identifiers. In DR mode
// identifiers are rewritten by the replication map.
func (s *CatalogStore) Members(_ context.Context, group string) ([]Target, error) {
	_, members, err := s.c.GroupMembers(group) // one transaction for the whole group
	if err != nil {
		return nil, err
	}
	out := make([]Target, 0, len(members))
	for _, m := range members {
		if !m.Found {
			return nil, fmt.Errorf("member %s: catalog: device %s: %w", m.ID, m.ID, catalog.ErrNotFound)
		}
		t, err := s.target(m.Device)
		if err != nil {
			return nil, fmt.Errorf("member %s: %w", m.ID, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// DeviceIdentifier parses a device's identifier as the resource database holds
// it: a full identifier (mqtt://home1-climate?READ:SETTINGS?TAG), a bare
// address (coap://127.0.0.1:5683), or nothing, meaning mqtt://<device id>.
func DeviceIdentifier(device, s string) (identifiers.ID, error) {
	switch {
	case s == "":
		s = "mqtt://" + device
		fallthrough
	case !strings.Contains(s, "?"):
		s += "?READ:SETTINGS?TAG"
	}
	id, err := identifiers.Parse(s)
	if err != nil {
		return identifiers.ID{}, fmt.Errorf("device %s: identifier: %w", device, err)
	}
	if _, err := id.Broker(); err != nil { // the broker shard of an MQTT device
		return identifiers.ID{}, fmt.Errorf("device %s: identifier %s: %w", device, id, err)
	}
	return id, nil
}
