// Package specblock reads the test vectors of docs/spec: fenced blocks of
// "name: value" lines in a Markdown file, opened by a fence such as
// "```vector" and closed by "```". The spec's tests read them, so the
// vectors another implementation checks itself against are the ones
// Fleetvault passes.
package specblock
