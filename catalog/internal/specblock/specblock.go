package specblock

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Block is one vector: its fields by name, and the line it starts on.
type Block struct {
	Line   int
	Fields map[string]string
}

// Read returns the blocks of the Markdown file at path opened by fence.
// A line inside a block that is not "name: value" is an error naming it.
func Read(path, fence string) ([]Block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("the spec's test vectors: %w", err)
	}
	defer f.Close()
	var out []Block
	var cur *Block
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		switch {
		case text == fence:
			cur = &Block{Line: line, Fields: map[string]string{}}
		case text == "```" && cur != nil:
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			name, val, ok := strings.Cut(text, ": ")
			if !ok {
				return nil, fmt.Errorf("%s:%d: %q is not name: value", path, line, text)
			}
			cur.Fields[name] = val
		}
	}
	return out, sc.Err()
}
