package personnummer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

type vectors struct {
	Valid []struct {
		Input     string `json:"input"`
		Canonical string `json:"canonical"`
	} `json:"valid"`
	Invalid []string `json:"invalid"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "personnummer.json"))
	if err != nil {
		t.Fatalf("reading test vectors: %v", err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decoding test vectors: %v", err)
	}
	if len(v.Valid) == 0 || len(v.Invalid) == 0 {
		t.Fatal("test vectors are empty")
	}
	return v
}

func TestParseValidVectors(t *testing.T) {
	for i, v := range loadVectors(t).Valid {
		n, err := Parse(v.Input)
		if err != nil {
			t.Errorf("valid vector %d rejected: %v", i, err)
			continue
		}
		if n.Canonical() != v.Canonical {
			t.Errorf("valid vector %d: canonical form differs from the expected one", i)
		}
	}
}

func TestParseInvalidVectors(t *testing.T) {
	for i, in := range loadVectors(t).Invalid {
		if _, err := Parse(in); err == nil {
			t.Errorf("invalid vector %d accepted", i)
		}
	}
}

func FuzzParse(f *testing.F) {
	v := loadVectors(f)
	for _, x := range v.Valid {
		f.Add(x.Input)
	}
	for _, x := range v.Invalid {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		c := n.Canonical()
		if len(c) != 12 {
			t.Fatalf("canonical form has %d characters", len(c))
		}
		again, err := Parse(c)
		if err != nil || again != n {
			t.Fatal("canonical form does not parse back to the same number")
		}
	})
}
