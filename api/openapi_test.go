package api

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// openAPIDoc is the part of docs/openapi.yaml the test checks.
type openAPIDoc struct {
	OpenAPI    string                          `yaml:"openapi"`
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components map[string]map[string]yaml.Node `yaml:"components"`
	Security   []map[string][]string           `yaml:"security"`
}

var httpMethods = map[string]bool{"get": true, "post": true, "put": true, "delete": true, "patch": true, "head": true, "options": true}

// TestOpenAPIMatchesRoutes checks that docs/openapi.yaml documents exactly
// the routes in the route table, with the right security, that every $ref
// resolves, and that the mux really serves each documented route.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	b, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	documented := map[string]bool{} // "GET /path"
	openDoc := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if !httpMethods[method] {
				continue
			}
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			var o struct {
				Security *[]map[string][]string `yaml:"security"`
			}
			if err := op.Decode(&o); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			if o.Security != nil && len(*o.Security) == 0 {
				openDoc[key] = true
			}
		}
	}
	statuses := openAPIStatuses(t)
	inMux := map[string]bool{}
	for _, rt := range routes() {
		key := rt.method + " " + rt.pattern
		inMux[key] = true
		t.Run(key, func(t *testing.T) {
			if !documented[key] {
				t.Fatalf("route %s is not in docs/openapi.yaml", key)
			}
			if openDoc[key] != rt.open {
				t.Fatalf("route %s: open %v in code, %v in docs/openapi.yaml (security: [])", key, rt.open, openDoc[key])
			}
			// Every authenticated route can refuse a caller (401); which routes
			// answer 403 and 404 to whom, TestAuthorizationMatrix checks.
			if !rt.open && !statuses[key][http.StatusUnauthorized] {
				t.Errorf("route %s needs a token but docs/openapi.yaml does not document its 401", key)
			}
		})
	}
	if _, ok := doc.Components["securitySchemes"]["bearer"]; !ok {
		t.Error("docs/openapi.yaml has no bearer security scheme")
	}
	var extra []string
	for key := range documented {
		if !inMux[key] {
			extra = append(extra, key)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("docs/openapi.yaml documents routes the server lacks: %v", extra)
	}

	t.Run("refs resolve", func(t *testing.T) {
		refRE := regexp.MustCompile(`\$ref: "#/components/([a-zA-Z]+)/([A-Za-z]+)"`)
		for _, m := range refRE.FindAllStringSubmatch(string(b), -1) {
			if _, ok := doc.Components[m[1]][m[2]]; !ok {
				t.Errorf("$ref %s/%s does not resolve", m[1], m[2])
			}
		}
	})

	t.Run("served", func(t *testing.T) {
		a, token := newTestAPI(t)
		h := a.Handler()
		wild := regexp.MustCompile(`\{[a-z]+\}`)
		for key := range documented {
			method, path, _ := strings.Cut(key, " ")
			req := httptest.NewRequest(method, wild.ReplaceAllString(path, "x"), nil)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if want := map[bool]int{true: http.StatusOK, false: http.StatusUnauthorized}[openDoc[key]]; rec.Code != want {
				t.Errorf("%s: status %d without a token, want %d", key, rec.Code, want)
			}
			req = httptest.NewRequest(method, wild.ReplaceAllString(path, "x"), nil)
			req.Header.Set("Authorization", "Bearer "+token)
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code == http.StatusMethodNotAllowed || strings.Contains(rec.Body.String(), "no API route") {
				t.Errorf("%s: not served: %d %s", key, rec.Code, rec.Body)
			}
		}
	})
}
