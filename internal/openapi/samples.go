package openapi

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"maps"
)

// sample is one request of the examples, from which every language's code
// sample is written.
type sample struct {
	method string
	// path is the path with the example ids and query.
	path string
	// body is the JSON body, or nil.
	body any
}

// headerSuffixes are the seven X-PIGELLO-* headers without their prefix;
// the samples read each from the variable PIGELLO_<suffix with _>.
var headerSuffixes = func() []string {
	var out []string
	for _, s := range securitySchemes {
		out = append(out, strings.TrimPrefix(s.header, "X-PIGELLO-"))
	}
	return out
}()

// EnvName is the environment variable a code sample reads a header from.
func EnvName(header string) string {
	return strings.ReplaceAll(strings.TrimPrefix(header, "X-"), "-", "_")
}

// all is the sample in every language, as x-codeSamples lists them.
func (s sample) all() []any {
	return []any{
		obj{"lang": "Shell", "label": "curl", "source": s.curl()},
		obj{"lang": "Go", "label": "Go", "source": s.golang()},
		obj{"lang": "Python", "label": "Python", "source": s.python()},
		obj{"lang": "JavaScript", "label": "JavaScript", "source": s.javascript()},
	}
}

func (s sample) url() string { return ExampleServer + s.path }

// compactJSON is the body on one line.
func (s sample) compactJSON() string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s.body); err != nil {
		panic("openapi: " + err.Error())
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func (s sample) curl() string {
	var b strings.Builder
	fmt.Fprintf(&b, "curl -fsS -X %s '%s'", s.method, s.url())
	for _, sc := range securitySchemes {
		fmt.Fprintf(&b, " \\\n  -H \"%s: $%s\"", sc.header, EnvName(sc.header))
	}
	if s.body != nil {
		body := s.compactJSON()
		if strings.Contains(body, "'") {
			panic("openapi: an example body holds a single quote, which the curl sample can't quote")
		}
		fmt.Fprintf(&b, " \\\n  -H 'Content-Type: application/json' \\\n  --data-binary '%s'", body)
	}
	return b.String() + "\n"
}

func (s sample) golang() string {
	var b strings.Builder
	b.WriteString("package main\n\nimport (\n\t\"fmt\"\n\t\"io\"\n\t\"net/http\"\n\t\"os\"\n\t\"strings\"\n)\n\nfunc main() {\n")
	if s.body != nil {
		fmt.Fprintf(&b, "\tbody := strings.NewReader(%s)\n", goString(s.compactJSON()))
	} else {
		b.WriteString("\tvar body io.Reader\n")
	}
	fmt.Fprintf(&b, "\treq, err := http.NewRequest(%q, %q, body)\n\tif err != nil {\n\t\tpanic(err)\n\t}\n", s.method, s.url())
	fmt.Fprintf(&b, "\tfor _, h := range []string{%s} {\n", quotedList(headerSuffixes))
	b.WriteString("\t\treq.Header.Set(\"X-PIGELLO-\"+h, os.Getenv(\"PIGELLO_\"+strings.ReplaceAll(h, \"-\", \"_\")))\n\t}\n")
	if s.body != nil {
		b.WriteString("\treq.Header.Set(\"Content-Type\", \"application/json\")\n")
	}
	b.WriteString("\tresp, err := http.DefaultClient.Do(req)\n\tif err != nil {\n\t\tpanic(err)\n\t}\n\tdefer resp.Body.Close()\n")
	b.WriteString("\tout, err := io.ReadAll(resp.Body)\n\tif err != nil {\n\t\tpanic(err)\n\t}\n")
	b.WriteString("\tfmt.Println(resp.Status)\n\tfmt.Println(string(out))\n\tif resp.StatusCode >= 300 {\n\t\tos.Exit(1)\n\t}\n}\n")
	return b.String()
}

// goString is a Go raw string literal when the text allows one.
func goString(s string) string {
	if !strings.Contains(s, "`") {
		return "`" + s + "`"
	}
	return fmt.Sprintf("%q", s)
}

func quotedList(items []string) string {
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = fmt.Sprintf("%q", it)
	}
	return strings.Join(q, ", ")
}

func (s sample) python() string {
	var b strings.Builder
	b.WriteString("import json\nimport os\n\nimport requests\n\n")
	fmt.Fprintf(&b, "headers = {\n    f\"X-PIGELLO-{h}\": os.environ[\"PIGELLO_\" + h.replace(\"-\", \"_\")]\n    for h in (%s)\n}\n", quotedList(headerSuffixes))
	fmt.Fprintf(&b, "response = requests.request(\n    %q,\n    %q,\n    headers=headers,\n", s.method, s.url())
	if s.body != nil {
		fmt.Fprintf(&b, "    json=%s,\n", pythonValue(s.body, 1))
	}
	b.WriteString(")\nresponse.raise_for_status()\n")
	if s.method == "DELETE" {
		b.WriteString("print(response.status_code)\n")
	} else {
		b.WriteString("print(json.dumps(response.json(), indent=2, ensure_ascii=False))\n")
	}
	return b.String()
}

// pythonValue writes a JSON value as a Python literal.
func pythonValue(v any, indent int) string {
	pad := strings.Repeat("    ", indent)
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case string:
		return quote(v)
	case map[string]any:
		var lines []string
		for _, k := range slices.Sorted(maps.Keys(v)) {
			lines = append(lines, pad+"    "+quote(k)+": "+pythonValue(v[k], indent+1)+",")
		}
		return "{\n" + strings.Join(lines, "\n") + "\n" + pad + "}"
	case []any:
		var lines []string
		for _, item := range v {
			lines = append(lines, pad+"    "+pythonValue(item, indent+1)+",")
		}
		return "[\n" + strings.Join(lines, "\n") + "\n" + pad + "]"
	}
	data, err := json.Marshal(v)
	if err != nil {
		panic("openapi: " + err.Error())
	}
	return string(data)
}

func (s sample) javascript() string {
	var b strings.Builder
	fmt.Fprintf(&b, "const headers = Object.fromEntries(\n  [%s].map((h) => [\n    `X-PIGELLO-${h}`,\n    process.env[`PIGELLO_${h.replaceAll(\"-\", \"_\")}`],\n  ]),\n);\n", quotedList(headerSuffixes))
	fmt.Fprintf(&b, "const response = await fetch(%q, {\n  method: %q,\n", s.url(), s.method)
	if s.body != nil {
		data, err := json.MarshalIndent(s.body, "  ", "  ")
		if err != nil {
			panic("openapi: " + err.Error())
		}
		fmt.Fprintf(&b, "  headers: { ...headers, \"Content-Type\": \"application/json\" },\n  body: JSON.stringify(%s),\n", data)
	} else {
		b.WriteString("  headers,\n")
	}
	b.WriteString("});\nif (!response.ok) throw new Error(`HTTP ${response.status}`);\n")
	if s.method == "DELETE" {
		b.WriteString("console.log(response.status);\n")
	} else {
		b.WriteString("console.log(JSON.stringify(await response.json(), null, 2));\n")
	}
	return b.String()
}
