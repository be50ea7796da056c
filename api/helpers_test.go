package api

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/apiclient"
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

// silentTransport never answers: a job on it stays running until cancelled
// or until the engine closes, so a test can control it.
type silentTransport struct{}

var _ agent.Transport = silentTransport{}

func (silentTransport) Do(ctx context.Context, _ identifiers.ID, _ *agent.Request) (*agent.Response, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (silentTransport) Close() error { return nil }

// testInstallation is a fresh installation with its engine and token store.
type testInstallation struct {
	cat    *catalog.Catalog
	eng    *grouprestore.Engine
	tokens *service.Tokens
	api    *API
}

func newInstallation(t *testing.T, tr map[string]agent.Transport) *testInstallation {
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
	e, err := grouprestore.New(grouprestore.Options{JournalPath: filepath.Join(dir, "journal.db"), CreateJournal: true, Catalog: store, Directory: store,
		Transports: tr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	tokens := service.OpenTokens(filepath.Join(dir, service.TokenFileName))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a := New(ctx, Options{Service: service.New(service.Options{Catalog: c, Engine: e, Tokens: tokens, Channels: loopChannels{}}), Engine: e, Tokens: tokens,
		Metrics: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})})
	return &testInstallation{cat: c, eng: e, tokens: tokens, api: a}
}

// newTestAPI opens a fresh installation and returns its API with a token
// store holding one admin token.
func newTestAPI(t *testing.T) (*API, string) {
	t.Helper()
	in := newInstallation(t, map[string]agent.Transport{"": offlineTransport{}})
	token, err := in.tokens.Create("admin")
	if err != nil {
		t.Fatal(err)
	}
	return in.api, token
}

// loopChannels reports every channel delivered without sending anything:
// the API's tests check routes and rules, not delivery (package server's
// tests send through real channels).
type loopChannels struct{}

func (loopChannels) TestChannels(_ context.Context, p catalog.NotifyPrefs) []apiclient.ChannelResult {
	var out []apiclient.ChannelResult
	if p.Email != "" {
		out = append(out, apiclient.ChannelResult{Channel: "email", Target: p.Email, Delivered: true})
	}
	if p.Webhook != "" {
		out = append(out, apiclient.ChannelResult{Channel: "webhook", Target: p.Webhook, Delivered: true})
	}
	return out
}
