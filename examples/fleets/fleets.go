// Package fleets embeds the shipped fleet files, so `fleetvault demo` and
// `fleetvault sim --fleet model-house` work without the repository beside
// the binary. The files themselves are documented in README.md here.
package fleets

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// Names lists the shipped fleets, e.g. "model-house".
func Names() []string {
	ents, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return out
}

// Read returns the shipped fleet file called name ("model-house" or
// "model-house.yaml").
func Read(name string) ([]byte, error) {
	name = strings.TrimSuffix(name, ".yaml")
	b, err := files.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no shipped fleet %q; the shipped fleets are %s", name, strings.Join(Names(), ", "))
	}
	return b, nil
}
