package openapi

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// toYAML writes a JSON value (as encoding/json decodes it into any: maps,
// slices, strings, float64, bool, nil) as YAML in block style. Every
// string and key is a JSON-quoted scalar, which YAML reads as the same
// string, so no value can be mistaken for another type.
func toYAML(v any) []byte {
	var b strings.Builder
	writeYAML(&b, v, 0)
	return []byte(b.String())
}

func writeYAML(b *strings.Builder, v any, indent int) {
	pad := strings.Repeat("  ", indent)
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			b.WriteString(pad + "{}\n")
			return
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			b.WriteString(pad + key(k) + ":")
			writeNested(b, v[k], indent)
		}
	case []any:
		if len(v) == 0 {
			b.WriteString(pad + "[]\n")
			return
		}
		for _, item := range v {
			b.WriteString(pad + "-")
			writeNested(b, item, indent)
		}
	default:
		b.WriteString(pad + scalar(v) + "\n")
	}
}

// writeNested writes the value after a key or a list dash: a scalar or an
// empty collection on the same line, anything else on the lines below.
func writeNested(b *strings.Builder, v any, indent int) {
	switch c := v.(type) {
	case map[string]any:
		if len(c) > 0 {
			b.WriteString("\n")
			writeYAML(b, c, indent+1)
			return
		}
		b.WriteString(" {}\n")
	case []any:
		if len(c) > 0 {
			b.WriteString("\n")
			writeYAML(b, c, indent+1)
			return
		}
		b.WriteString(" []\n")
	default:
		b.WriteString(" " + scalar(v) + "\n")
	}
}

func scalar(v any) string {
	if s, ok := v.(string); ok {
		return quote(s)
	}
	data, _ := json.Marshal(v) // numbers, booleans and null are YAML as JSON writes them
	return string(data)
}

// plainKey is a key YAML reads as the same string without quotes: no
// indicator first, nothing YAML would read as another type.
var plainKey = regexp.MustCompile(`^[A-Za-z_/$][A-Za-z0-9_./{}$-]*$`)

// key writes a mapping key, plain where that reads the same.
func key(k string) string {
	switch strings.ToLower(k) {
	case "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~":
		return quote(k)
	}
	if plainKey.MatchString(k) {
		return k
	}
	return quote(k)
}

// quote writes s as a JSON string: a YAML double-quoted scalar with the
// same escapes. HTML characters stay as they are.
func quote(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}
