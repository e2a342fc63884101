package dialect

import (
	"slices"
	"testing"
	"time"
)

func TestBind(t *testing.T) {
	cases := []struct{ in, sqlite, postgres string }{
		{"SELECT 1", "SELECT 1", "SELECT 1"},
		{"a = ?", "a = ?", "a = $1"},
		{"a = ? AND b IN (?, ?)", "a = ? AND b IN (?, ?)", "a = $1 AND b IN ($2, $3)"},
		{"?????????? ?", "?????????? ?", "$1$2$3$4$5$6$7$8$9$10 $11"},
		{"é = ?, ö = ?", "é = ?, ö = ?", "é = $1, ö = $2"},
	}
	for _, c := range cases {
		if got := SQLite.Bind(c.in); got != c.sqlite {
			t.Errorf("SQLite.Bind(%q) = %q, want %q", c.in, got, c.sqlite)
		}
		if got := Postgres.Bind(c.in); got != c.postgres {
			t.Errorf("Postgres.Bind(%q) = %q, want %q", c.in, got, c.postgres)
		}
	}
}

func TestValues(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CET", 3600))
	if got := SQLite.Time(at); got != "2024-05-06T06:08:09.123456Z" {
		t.Errorf("SQLite.Time = %v", got)
	}
	if got, ok := Postgres.Time(at).(time.Time); !ok || !got.Equal(at.Truncate(time.Microsecond)) || got.Location() != time.UTC {
		t.Errorf("Postgres.Time = %v, want %v in UTC", got, at.Truncate(time.Microsecond))
	}
	for _, d := range []Dialect{SQLite, Postgres} {
		empty, err := d.List(nil)
		if err != nil {
			t.Fatal(err)
		}
		two, _ := d.List([]string{"a", "b"})
		switch d {
		case SQLite:
			if empty != "[]" || two != `["a","b"]` {
				t.Errorf("SQLite.List = %v, %v", empty, two)
			}
		default:
			if l, ok := empty.([]string); !ok || l == nil || len(l) != 0 || !slices.Equal(two.([]string), []string{"a", "b"}) {
				t.Errorf("Postgres.List = %#v, %#v", empty, two)
			}
		}
	}
}
