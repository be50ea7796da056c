package api

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/service"
)

// offlineTransport answers every request as if the device were offline: the
// API's tests need an engine, not devices.
type offlineTransport struct{}

var _ agent.Transport = offlineTransport{}

func (offlineTransport) Do(context.Context, identifiers.ID, *agent.Request) (*agent.Response, error) {
	return nil, errors.New("offline")
}
func (offlineTransport) Close() error { return nil }

// newTestAPI opens a fresh installation and returns its API with a token
// store holding one admin token.
func newTestAPI(t *testing.T) (*API, string) {
	t.Helper()
	dir := t.TempDir()
	mbr, err := catalog.Init(dir, catalog.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Open(mbr, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	store := grouprestore.NewCatalogStore(c)
	e, err := grouprestore.New(grouprestore.Options{JournalPath: filepath.Join(dir, "journal.db"), Catalog: store, Directory: store,
		Transports: map[string]agent.Transport{"": offlineTransport{}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	tokens := service.OpenTokens(filepath.Join(dir, service.TokenFileName))
	token, err := tokens.Create("admin")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return New(ctx, Options{Service: service.New(service.Options{Catalog: c, Engine: e}), Engine: e, Tokens: tokens}), token
}
