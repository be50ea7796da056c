package bui_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// screenshots, when set, is where the browser tests write the main pages'
// screenshots (docs/bui for the README): go test ./bui -run Browser -screenshots ../docs/bui
var screenshots = flag.String("screenshots", "", "write PNG screenshots of the main pages to this directory")

// browserPaths are where Debian's chromium and the usual Chrome builds live.
var browserPaths = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// findBrowser returns the path of a Chromium, or "".
func findBrowser() string {
	for _, name := range browserPaths {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is the one headless Chromium the package's tests share: each test
// opens its own tab.
type browser struct {
	once   sync.Once
	ctx    context.Context
	cancel func()
	err    error
}

func (b *browser) start(t *testing.T) context.Context {
	t.Helper()
	path := findBrowser()
	if path == "" {
		t.Skip("no chromium installed: make test installs Debian's chromium (DEB_PKGS); apt-get install chromium")
	}
	b.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless,
			chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))
		actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, bcancel := chromedp.NewContext(actx)
		b.ctx, b.cancel = bctx, func() { bcancel(); acancel() }
		b.err = chromedp.Do(bctx) // starts the browser
	})
	if b.err != nil {
		t.Fatalf("start %s: %v", path, b.err)
	}
	return b.ctx
}

var shared browser

// loggedOn are browser contexts logged on once for the whole package: a
// log-on costs a full argon2id check (seconds under the race detector).
type loggedOn struct {
	mu    sync.Mutex
	users map[string]context.Context
}

var sessions loggedOn

// newTabAs opens a tab logged on as user (with password) on the server at
// base, sharing one log-on per user with the package's other tests. Tests
// that log out or change the session use newTab and their own log-on.
func newTabAs(t *testing.T, base, user, password string) *tab {
	t.Helper()
	bctx := shared.start(t)
	sessions.mu.Lock()
	defer sessions.mu.Unlock()
	if sessions.users == nil {
		sessions.users = map[string]context.Context{}
	}
	key := base + " " + user
	if ctx, ok := sessions.users[key]; ok {
		return newTabIn(t, ctx, base)
	}
	ctx, _ := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext()) // closed with the browser
	first := &tab{t: t, ctx: ctx, base: base}
	first.logOn(user, password)
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || strings.Contains(loc, "/logon") {
		t.Fatalf("log on as %s: still at %s (%v)", user, loc, err)
	}
	sessions.users[key] = ctx
	return newTabIn(t, ctx, base)
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if shared.cancel != nil {
		shared.cancel()
	}
	closeWorld()
	os.Exit(code)
}

// tab is one browser tab of a test, on the server at base. It records every
// request the page makes, and at the end of the test fails it if one went
// to another host than base's.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu   sync.Mutex
	urls []string
}

func newTab(t *testing.T, base string) *tab {
	t.Helper()
	return newTabIn(t, shared.start(t), base, chromedp.WithNewBrowserContext()) // its own cookies
}

// newTabIn opens a tab under parent: with no option, in parent's browser
// context (its cookies: its log-on).
func newTabIn(t *testing.T, parent context.Context, base string, opts ...chromedp.ContextOption) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	tctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	tb := &tab{t: t, ctx: tctx, base: base}
	t.Cleanup(func() {
		tcancel()
		cancel()
	})
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			tb.mu.Lock()
			tb.urls = append(tb.urls, e.Request.URL)
			tb.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tb.checkRequests)
	return tb
}

// checkRequests fails the test for a request to another host.
func (tb *tab) checkRequests() {
	host := mustURL(tb.t, tb.base).Host
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.urls) == 0 {
		return
	}
	for _, u := range tb.urls {
		if strings.HasPrefix(u, "data:") {
			continue
		}
		if h := mustURL(tb.t, u).Host; h != host {
			tb.t.Errorf("the page requested %s, on host %q; every request must go to %s", u, h, host)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return u
}

// do runs actions in the tab, failing the test with what on error.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// text returns the text of the first element sel matches, once visible.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	tb.do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	s, err := chromedp.Run(tb.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// eval evaluates a JavaScript expression of type T.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// open navigates to path on the server.
func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.do("open "+path, chromedp.Navigate(tb.base+path))
}

// logOn logs on as user with password and waits for the page after.
func (tb *tab) logOn(user, password string) {
	tb.t.Helper()
	tb.open("/logon")
	tb.do("log on as "+user,
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("form.card button[type=submit]")),
	)
	// The answer is another page, or the log-on page again with a message
	// (the first one has none).
	tb.waitFor("the answer to the log-on", `document.readyState === 'complete' && (!location.pathname.startsWith('/logon') || document.querySelector('#logon-message') !== null)`)
}

// waitFor waits until the JavaScript predicate holds. A navigation while
// it polls ends the poll in the old page; it polls again in the new one.
func (tb *tab) waitFor(what, predicate string) {
	tb.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		_, err := chromedp.Run(tb.ctx, chromedp.Poll[bool](predicate, chromedp.WithPollingTimeout(45*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
		if err == nil {
			return
		}
		if tb.ctx.Err() != nil || time.Now().After(deadline) {
			tb.t.Fatalf("wait for %s: %v", what, err)
		}
	}
}

// shot writes a full-page screenshot called name (name.png) to the
// -screenshots directory, or to the test's temporary directory, and checks
// it is a PNG.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	b, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		tb.t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	dir := *screenshots
	if dir == "" {
		dir = tb.t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot: %s", p)
}

func (tb *tab) String() string { return fmt.Sprintf("tab on %s", tb.base) }
