package catalog

import (
	"fmt"
	"time"
)

// LatestAsOf returns a client's newest piece of type typ ("" for any)
// backed up at or before asOf (the zero time: no bound), from every catalog,
// or ErrNotFound. A replacement restore reads an old device's settings so.
func (c *Catalog) LatestAsOf(client, typ string, asOf time.Time) (Piece, error) {
	ps, err := c.Pieces(Query{Client: client, To: asOf})
	if err != nil {
		return Piece{}, err
	}
	for _, p := range ps {
		if typ == "" || p.Type == typ {
			return p, nil
		}
	}
	when := ""
	if !asOf.IsZero() {
		when = " at or before " + asOf.UTC().Format(time.RFC3339)
	}
	return Piece{}, fmt.Errorf("catalog: no %s piece of client %s%s: %w", typ, client, when, ErrNotFound)
}
