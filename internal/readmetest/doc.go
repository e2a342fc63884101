// Package readmetest runs what README.md tells a reader to run, so the
// README and the code cannot drift apart: the walkthrough block, as it is
// written, against a freshly built server.
package readmetest
