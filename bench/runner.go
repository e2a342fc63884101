package main

import (
	"fmt"
	"os"
	"slices"
)

// runner gives servetest what it needs of a test (servetest.TB) for one
// engine's run: temporary directories and cleanups, all undone by close,
// and Fatal, which panics with a fatal that runEngine recovers. It is used
// from the goroutine that runs the engine only.
type runner struct {
	dirs     []string
	cleanups []func()
}

// fatal is a runner's Fatal, on its way to runEngine.
type fatal struct{ msg string }

func (f fatal) Error() string { return f.msg }

func (r *runner) Helper() {}

func (r *runner) Fatal(args ...any) { panic(fatal{fmt.Sprint(args...)}) }

func (r *runner) Fatalf(format string, args ...any) { panic(fatal{fmt.Sprintf(format, args...)}) }

func (r *runner) TempDir() string {
	dir, err := os.MkdirTemp("", "accounts-bench-")
	if err != nil {
		r.Fatal(err)
	}
	r.dirs = append(r.dirs, dir)
	return dir
}

func (r *runner) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// close runs the cleanups, last first, then removes the directories.
func (r *runner) close() {
	for _, f := range slices.Backward(r.cleanups) {
		f()
	}
	for _, dir := range r.dirs {
		os.RemoveAll(dir)
	}
	r.cleanups, r.dirs = nil, nil
}

// catch turns a runner's Fatal into *err; deferred by runEngine.
func catch(err *error) {
	if p := recover(); p != nil {
		f, ok := p.(fatal)
		if !ok {
			panic(p)
		}
		*err = f
	}
}
