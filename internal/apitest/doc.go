// Package apitest holds the end-to-end suite: real HTTP through the real
// handler (built by cli.OpenApp exactly as serve builds it), a real SQLite
// file per test, customers and clients made by the real CLI commands.
package apitest
