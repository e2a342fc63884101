package config

import (
	"flag"
	"io"
	"testing"
)

// A limit is written one way, from a flag or its variable: plain decimal
// digits (a fraction only for the rate), a duration that begins with a
// digit. What strconv and time would also take (a sign, a leading zero,
// an underscore, an exponent, a base prefix) is refused, not read.
func TestLimitValuesAreWrittenOneWay(t *testing.T) {
	refused := map[string][]string{
		"max-in-flight": {"010", "+5", "1_000", "0x10", "1e3", "1.5", " 5", "5 ", "-1", "5."},
		"client-rate":   {"010", "+5", "1_000", "0x1p4", "1e-300", ".5", "5.", "1e3", "-0"},
		"list-memory":   {"010", "+5", "010MiB", "1_000", "+1KiB"},
		"request-timeout": {"+30s", ".5s", "-1s", "30", "1h1h", "1s1m", "010s", "1.5m30s", "1s.", "s", "0s0s", "1m 30s", "1ms1ms", "1µs1us",
			"1m0.0000000001s", "1.5ns", "0.0000000001s", "1.000000000000001h"},
	}
	accepted := map[string][]string{
		"max-in-flight": {"0", "5", "1000"},
		"client-rate":   {"0", "0.5", "1000", "12.25"},
		"list-memory":   {"0", "268435456", "256MiB"},
		"request-timeout": {"30s", "1m30s", "1.5s", "0", "0s", "500ms", "1m0.5s", "1h1m1s1ms1us1ns", "2µs",
			"1.000000001s", "0.5us", "1.0000000000h"},
	}
	envOf := map[string]string{}
	for _, lf := range limitFlags {
		envOf[lf.name] = lf.env
	}
	bind := func(env map[string]string) (*Config, *flag.FlagSet) {
		c := &Config{}
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.BindLimits(fs, MapEnv(env))
		return c, fs
	}
	for name, values := range refused {
		for _, v := range values {
			if _, fs := bind(nil); fs.Parse([]string{"--" + name, v}) == nil {
				t.Errorf("--%s %q: accepted", name, v)
			}
			if c, _ := bind(map[string]string{envOf[name]: v}); c.envError() == nil {
				t.Errorf("%s=%q: accepted", envOf[name], v)
			}
		}
	}
	for name, values := range accepted {
		for _, v := range values {
			if _, fs := bind(nil); fs.Parse([]string{"--" + name, v}) != nil {
				t.Errorf("--%s %q: refused", name, v)
			}
			if c, _ := bind(map[string]string{envOf[name]: v}); c.envError() != nil {
				t.Errorf("%s=%q: %v", envOf[name], v, c.envError())
			}
		}
	}
}
