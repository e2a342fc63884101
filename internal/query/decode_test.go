package query

import (
	"strings"
	"testing"
	"unicode/utf8"

	"accounts/internal/apperr"
	"accounts/internal/schema"
)

// FuzzParseQuery checks the list query language end to end, from the raw
// query string: it never panics, and never drops a parameter silently —
// every parameter given is either in the parsed query or named by the
// error (non_field_errors standing for a name that does not decode).
func FuzzParseQuery(f *testing.F) {
	for _, seed := range []string{
		"", "first_name=Anna", "last_name__icontains=berg&_order_by=last_name,-created_at&_page=2&_page_size=50",
		"ssn=19121212-1212", "ssn=%GG", "first_name=Nope;x=1", "%GG=1", "tenant__isnull!=true",
		"_page=9223372036854775807&_page_size=2", "_search=a+b&_slim=true&_jsonl=true",
		"created_at__gte=2026-01-01T00:00:00Z", "latitude__in=1,2.5,-3e2", "a=1&&b=2&", "=x",
		"first_name=%C0%AF", "global_segments=x", "_statistics=true&_jsonl=true", "id__in=,",
	} {
		f.Add(seed, uint8(0))
		f.Add(seed, uint8(4))
	}
	catalog := schema.New()
	f.Fuzz(func(t *testing.T, raw string, which uint8) {
		res := catalog.Resources[int(which)%len(catalog.Resources)]
		values, err := Decode(raw)
		if err != nil {
			fe := apperr.FieldsOf(err)
			if apperr.KindOf(err) != apperr.Invalid || len(fe) == 0 {
				t.Fatalf("Decode error is not a field error: %v", err)
			}
			return
		}
		given := 0
		for pair := range strings.SplitSeq(raw, "&") {
			if pair != "" {
				given++
			}
		}
		total := 0
		for name, vals := range values {
			total += len(vals)
			if !utf8.ValidString(name) || schema.HasControl(name) {
				t.Fatalf("Decode let through a name that is not text: %q", name)
			}
			for _, v := range vals {
				if !utf8.ValidString(v) || schema.HasControl(v) {
					t.Fatalf("Decode let through a value that is not text: %q", v)
				}
			}
		}
		if total != given {
			t.Fatalf("Decode kept %d of %d parameters without an error", total, given)
		}
		q, err := Parse(res, values)
		if err != nil {
			fe := apperr.FieldsOf(err)
			if apperr.KindOf(err) != apperr.Invalid || len(fe) == 0 {
				t.Fatalf("Parse error is not a field error: %v", err)
			}
			for key := range fe {
				if _, ok := values[key]; !ok {
					t.Fatalf("Parse error names %q, which was not given", key)
				}
			}
			return
		}
		filters := 0
		for name, vals := range values {
			if len(vals) != 1 {
				t.Fatalf("parameter %q given %d times was accepted", name, len(vals))
			}
			if strings.HasPrefix(name, "_") {
				switch name {
				case "_page", "_page_size", "_order_by", "_search", "_slim", "_statistics", "_jsonl":
				default:
					t.Fatalf("unknown reserved parameter %q was accepted", name)
				}
				continue
			}
			filters++
		}
		if len(q.Filters) != filters {
			t.Fatalf("%d filters given, %d parsed", filters, len(q.Filters))
		}
		if q.Paged() && (int64(q.Page)-1)*int64(q.PageSize) > MaxOffset {
			t.Fatalf("page %d of %d passes the offset bound", q.Page, q.PageSize)
		}
		if q.Paged() != (values.Has("_page") && values.Has("_page_size")) {
			t.Fatalf("paging parsed %v from %v", q.Paged(), values)
		}
	})
}

func TestDecodeExactly(t *testing.T) {
	values, err := Decode("a=1&b=x+y%3Bz&c&d=%C3%A5&&e=")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "1", "b": "x y;z", "c": "", "d": "å", "e": ""}
	if len(values) != len(want) {
		t.Fatalf("decoded %d names, want %d", len(values), len(want))
	}
	for k, v := range want {
		if got := values.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}
