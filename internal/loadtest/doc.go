// Package loadtest holds tests that put a real `accounts serve` process
// under hostile load — a customer flooding it with heavy lists, hundreds of
// connections that send their headers a byte a second — and check that every
// other caller is still served in time and that every answer the flood gets
// is whole.
//
// The server is built without the race detector and runs as a child
// process, so that it works at the speed it has in production even when the
// tests run under `go test -race`; only the test process is instrumented.
// The other caller whose latency is measured runs as a process of its own
// too (the test binary, started as a probe): a real one does not share the
// load's Go scheduler, only the machine's processors.
// The package has no code of its own: everything is in its tests.
package loadtest
