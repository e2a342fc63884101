package config

import (
	"errors"
	"flag"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"accounts/internal/limit"
)

// DefaultLimits are limits that a property-management platform's nightly
// sync never meets (a few workers in parallel, bulk writes of up to 1,000
// objects, pages of up to 1,000), while a flood from one client or one
// customer is refused before it can slow every other customer down.
var DefaultLimits = limit.Config{
	InFlight:            256,
	CustomerInFlight:    64, // a quarter: no one customer fills the process
	ClientRate:          1000,
	ClientBurst:         2000,
	CustomerExpensive:   3,
	Expensive:           6,
	CustomerLists:       8, // its expensive lists, and more still being measured
	ListMemory:          256 << 20,
	SortRows:            10_000,
	ListCacheRows:       50_000,
	SearchCandidates:    1000,
	AuthWindow:          time.Minute,
	AddressAuthFailures: 50,
	ClientAuthFailures:  10,
	Connections:         4096,
	AddressConnections:  512, // twice the requests in flight, for idle keep-alive connections
}

// DefaultRequestTimeout bounds a request's work before its response starts.
const DefaultRequestTimeout = 30 * time.Second

// limitFlag is one limit's flag: its name, environment variable, and how
// it reads a value into the Config.
type limitFlag struct {
	name, env, usage string
	set              func(c *Config, v string) error
	get              func(c *Config) string
}

var limitFlags = []limitFlag{
	{"max-in-flight", "ACCOUNTS_MAX_IN_FLIGHT", "API requests the process works on at once; past it 503",
		func(c *Config, v string) error { return setInt(&c.Limits.InFlight, v) },
		func(c *Config) string { return strconv.Itoa(c.Limits.InFlight) }},
	{"customer-in-flight", "ACCOUNTS_CUSTOMER_IN_FLIGHT", "API requests of one customer the process works on at once; past it 429",
		func(c *Config, v string) error { return setInt(&c.Limits.CustomerInFlight, v) },
		func(c *Config) string { return strconv.Itoa(c.Limits.CustomerInFlight) }},
	{"client-rate", "ACCOUNTS_CLIENT_RATE", "requests per second a client may make on average; past it 429",
		func(c *Config, v string) error { return setFloat(&c.Limits.ClientRate, v) },
		func(c *Config) string { return strconv.FormatFloat(c.Limits.ClientRate, 'g', -1, 64) }},
	{"client-burst", "ACCOUNTS_CLIENT_BURST", "requests a client may make at once above its rate",
		func(c *Config, v string) error { return setInt(&c.Limits.ClientBurst, v) },
		func(c *Config) string { return strconv.Itoa(c.Limits.ClientBurst) }},
	{"customer-expensive", "ACCOUNTS_CUSTOMER_EXPENSIVE", "expensive requests (lists reading many rows, bulk writes) a customer may have at once; past it 429",
		func(c *Config, v string) error { return setInt(&c.Limits.CustomerExpensive, v) },
		func(c *Config) string { return strconv.Itoa(c.Limits.CustomerExpensive) }},
	{"customer-lists", "ACCOUNTS_CUSTOMER_LISTS", "lists a customer may have in progress at once, cheap or expensive; past it 429",
		func(c *Config, v string) error { return setInt(&c.Limits.CustomerLists, v) },
		func(c *Config) string { return strconv.Itoa(c.Limits.CustomerLists) }},
	{"max-expensive", "ACCOUNTS_MAX_EXPENSIVE", "expensive requests the process runs at once; past it 503",
		func(c *Config, v string) error { return setInt(&c.Limits.Expensive, v) },
		func(c *Config) string { return strconv.Itoa(c.Limits.Expensive) }},
	{"list-memory", "ACCOUNTS_LIST_MEMORY", "bytes lists in progress may hold to sort (suffix KiB, MiB or GiB); past it 503",
		func(c *Config, v string) error { return setBytes(&c.Limits.ListMemory, v) },
		func(c *Config) string { return strconv.FormatInt(c.Limits.ListMemory, 10) }},
	{"sort-rows", "ACCOUNTS_SORT_ROWS", "matches one list may hold to order them by a personal field; past it 400",
		func(c *Config, v string) error { return setInt(&c.Limits.SortRows, v) },
		func(c *Config) string { return strconv.Itoa(c.Limits.SortRows) }},
	{"list-cache-rows", "ACCOUNTS_LIST_CACHE_ROWS", "rows of one customer's resource the cache of decrypted objects for lists keeps at most (0: no cache)",
		func(c *Config, v string) error { return setInt(&c.Limits.ListCacheRows, v) },
		func(c *Config) string { return strconv.Itoa(c.Limits.ListCacheRows) }},
	{"search-candidates", "ACCOUNTS_SEARCH_CANDIDATES", "candidate rows a list on a searchable field reads through the search index, to decrypt and confirm each (0: lists never use the index)",
		func(c *Config, v string) error { return setInt(&c.Limits.SearchCandidates, v) },
		func(c *Config) string { return strconv.Itoa(c.Limits.SearchCandidates) }},
	{"auth-window", "ACCOUNTS_AUTH_WINDOW", "window in which failed authentications are counted, e.g. 1m",
		func(c *Config, v string) error { return setDuration(&c.Limits.AuthWindow, v) },
		func(c *Config) string { return c.Limits.AuthWindow.String() }},
	{"auth-failures-per-address", "ACCOUNTS_AUTH_FAILURES_PER_ADDRESS", "failed authentications from one source address per window; past it 429",
		func(c *Config, v string) error { return setInt(&c.Limits.AddressAuthFailures, v) },
		func(c *Config) string { return strconv.Itoa(c.Limits.AddressAuthFailures) }},
	{"auth-failures-per-client", "ACCOUNTS_AUTH_FAILURES_PER_CLIENT", "failed authentications naming one client per window; past it 429",
		func(c *Config, v string) error { return setInt(&c.Limits.ClientAuthFailures, v) },
		func(c *Config) string { return strconv.Itoa(c.Limits.ClientAuthFailures) }},
	{"max-connections", "ACCOUNTS_MAX_CONNECTIONS", "client connections the API's address keeps open at once; past it a new one is closed at once",
		func(c *Config, v string) error { return setInt(&c.Limits.Connections, v) },
		func(c *Config) string { return strconv.Itoa(c.Limits.Connections) }},
	{"connections-per-address", "ACCOUNTS_CONNECTIONS_PER_ADDRESS", "client connections from one source address kept open at once; past it a new one is closed at once",
		func(c *Config, v string) error { return setInt(&c.Limits.AddressConnections, v) },
		func(c *Config) string { return strconv.Itoa(c.Limits.AddressConnections) }},
	{"request-timeout", "ACCOUNTS_REQUEST_TIMEOUT", "time a request may work before its response starts, and a streaming list between stretches; past it 503",
		func(c *Config, v string) error { return setDuration(&c.RequestTimeout, v) },
		func(c *Config) string { return c.RequestTimeout.String() }},
}

// BindLimits registers the limit flags of serve on fs, each defaulting to
// its environment variable, else to DefaultLimits. A value that does not
// parse, from a flag or the environment, makes Validate fail: a limit is
// never silently left at a default the operator did not choose. Zero turns
// a limit off (the request timeout can't be off).
func (c *Config) BindLimits(fs *flag.FlagSet, env Env) {
	c.limitsBound = true
	c.Limits = DefaultLimits
	c.RequestTimeout = DefaultRequestTimeout
	for _, lf := range limitFlags {
		if v := c.lookup(env, lf.env); v != "" {
			if err := lf.set(c, v); err != nil {
				c.envErrs = append(c.envErrs, fmt.Errorf("%s: %v", lf.env, err))
			}
		}
		fs.Func(lf.name, fmt.Sprintf("%s (env %s; default %s)", lf.usage, lf.env, lf.get(c)), func(v string) error {
			return lf.set(c, v)
		})
	}
}

// Bounds of the two durations. Below a second, the request timeout
// refuses every request (a server that starts, says it is ready, and
// answers 503 to all) and the window forgets each failed authentication
// before the next can count; above them, a value is a typo of units.
const (
	minDuration       = time.Second
	maxRequestTimeout = time.Hour
	maxAuthWindow     = 24 * time.Hour
)

// validateLimits checks the two durations, which can't be off: the
// request timeout, and the window failed authentications are counted in
// (the counts themselves are turned off by their own flags).
func (c *Config) validateLimits() error {
	if !c.limitsBound {
		return nil
	}
	if c.RequestTimeout < minDuration || c.RequestTimeout > maxRequestTimeout {
		return fmt.Errorf("--request-timeout (ACCOUNTS_REQUEST_TIMEOUT) must be from %v to %v", minDuration, maxRequestTimeout)
	}
	if c.Limits.ClientRate > 0 && c.Limits.ClientBurst < 1 {
		// A bucket of no token admits nothing: 0 is not "off" here, the
		// rate is (--client-rate 0).
		return errors.New("--client-burst (ACCOUNTS_CLIENT_BURST) must be at least 1 while --client-rate is on (to turn the rate limit off, set --client-rate to 0)")
	}
	if c.Limits.AuthWindow < minDuration || c.Limits.AuthWindow > maxAuthWindow {
		return fmt.Errorf("--auth-window (ACCOUNTS_AUTH_WINDOW) must be from %v to %v (to stop counting failed authentications, set --auth-failures-per-address and --auth-failures-per-client to 0)", minDuration, maxAuthWindow)
	}
	return nil
}

// decimal reports whether v is a number in plain decimal digits: no sign,
// no leading zero, no exponent, underscore or base prefix (which strconv
// takes: 010, +5, 1_000, 0x1p4), and a fraction only when fraction is set.
// A limit is written one way, as the query language's numbers are.
func decimal(v string, fraction bool) bool {
	whole, frac, dotted := strings.Cut(v, ".")
	if dotted && (!fraction || !digits(frac)) {
		return false
	}
	return digits(whole) && (whole == "0" || whole[0] != '0')
}

// digits reports whether v is one or more ASCII digits.
func digits(v string) bool {
	return v != "" && strings.Trim(v, "0123456789") == ""
}

func setInt(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || !decimal(v, false) {
		return errors.New("must be a whole number, 0 or more")
	}
	*dst = n
	return nil
}

func setFloat(dst *float64, v string) error {
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 || n != n || n > 1e9 || !decimal(v, true) {
		return errors.New("must be a number, 0 or more")
	}
	*dst = n
	return nil
}

func setDuration(dst *time.Duration, v string) error {
	d, err := ParseDuration(v)
	if err != nil {
		return err
	}
	*dst = d
	return nil
}

// durationUnits are the units time.ParseDuration takes, each with its
// rank, largest first; µs and μs (two code points) are one unit. Longer
// spellings come before their prefixes, so "ms" is found before "m".
var durationUnits = []durationUnit{
	{"h", 0, time.Hour}, {"ms", 3, time.Millisecond}, {"m", 1, time.Minute}, {"s", 2, time.Second},
	{"us", 4, time.Microsecond}, {"µs", 4, time.Microsecond}, {"μs", 4, time.Microsecond}, {"ns", 5, time.Nanosecond},
}

type durationUnit struct {
	name string
	rank int
	size time.Duration
}

// ParseDuration reads a duration of 0 or more written one way: "0", or
// numbers in plain decimal digits each followed by a unit, the units from
// largest to smallest and each at most once, a fraction in the last number
// only, and a whole number of nanoseconds: 30s, 1m30s, 1.5s.
// time.ParseDuration also takes a sign (+30s), a bare fraction (.5s),
// leading zeros (010s) and a unit twice (1h1h), which an operator does not
// mean to write, and drops what is finer than a nanosecond (1.0000000001s
// is 1s), so each is refused.
func ParseDuration(v string) (time.Duration, error) {
	invalid := errors.New("must be a duration such as 30s or 1m30s, 0 or more")
	if v == "0" {
		return 0, nil
	}
	rest, last := v, -1
	for rest != "" {
		n := strings.IndexFunc(rest, func(r rune) bool { return r != '.' && (r < '0' || r > '9') })
		if n <= 0 {
			return 0, invalid
		}
		number := rest[:n]
		rest = rest[n:]
		unit := slices.IndexFunc(durationUnits, func(u durationUnit) bool { return strings.HasPrefix(rest, u.name) })
		if unit < 0 {
			return 0, invalid
		}
		u := durationUnits[unit]
		rest = rest[len(u.name):]
		if u.rank <= last || !decimal(number, rest == "") || !wholeNanoseconds(number, u.size) {
			return 0, invalid
		}
		last = u.rank
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, invalid
	}
	return d, nil
}

// wholeNanoseconds reports whether number (plain decimal digits, perhaps
// with a fraction) of units of size is a whole number of nanoseconds.
func wholeNanoseconds(number string, size time.Duration) bool {
	r, ok := new(big.Rat).SetString(number)
	return ok && r.Mul(r, new(big.Rat).SetInt64(int64(size))).IsInt()
}

// setBytes reads a byte count: a whole number with an optional KiB, MiB or
// GiB suffix.
func setBytes(dst *int64, v string) error {
	unit := int64(1)
	for suffix, u := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(v, suffix) {
			v, unit = strings.TrimSuffix(v, suffix), u
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/unit || !decimal(v, false) {
		return errors.New("must be a byte count such as 268435456 or 256MiB, 0 or more")
	}
	*dst = n * unit
	return nil
}
