package cli

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// versionInfo is what accounts version prints: the module's version and
// how the binary was built. Fields the build did not record (no VCS
// information in a build outside a checkout) are null.
type versionInfo struct {
	Path     string  `json:"path"`
	Version  string  `json:"version"`
	Go       string  `json:"go"`
	Platform string  `json:"platform"`
	Revision *string `json:"revision"`
	Time     *string `json:"time"`
	Modified *bool   `json:"modified"`
}

// version prints the build information Go records in every binary
// (runtime/debug.ReadBuildInfo): the module version, the Go version, and
// the VCS revision and its time when built from a checkout. It opens
// nothing, so it answers even where the database is unreachable.
func version(fs *flag.FlagSet, io IO) runFunc {
	asJSON := fs.Bool("json", false, "print JSON")
	return func(ctx context.Context, _ []string) error {
		bi, ok := debug.ReadBuildInfo()
		v := buildVersion(bi, ok)
		if *asJSON {
			return printJSON(io, v)
		}
		fmt.Fprintf(io.Stdout, "%s %s\n%s %s\n", v.Path, v.Version, v.Go, v.Platform)
		if v.Revision != nil {
			line := "revision " + *v.Revision
			if v.Time != nil {
				line += " of " + *v.Time
			}
			if v.Modified != nil && *v.Modified {
				line += ", with uncommitted changes"
			}
			fmt.Fprintln(io.Stdout, line)
		}
		return nil
	}
}

// buildVersion reads the build information (ok false: none recorded).
func buildVersion(bi *debug.BuildInfo, ok bool) versionInfo {
	v := versionInfo{Path: "accounts", Version: "(unknown)", Go: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !ok || bi == nil {
		return v
	}
	if bi.Main.Path != "" {
		v.Path = bi.Main.Path
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = &s.Value
		case "vcs.time":
			v.Time = &s.Value
		case "vcs.modified":
			modified := s.Value == "true"
			v.Modified = &modified
		}
	}
	return v
}
