package cli

import (
	"bytes"
	"strings"
	"testing"
)

// On a terminal rotate-data redraws one bar in place; elsewhere it writes
// plain lines a log keeps.
func TestProgressBarOnTerminalLinesElsewhere(t *testing.T) {
	var plain bytes.Buffer
	p := newProgress(&plain)
	if p.terminal {
		t.Fatal("a buffer taken for a terminal")
	}
	p.start("c1", 2, 400)
	p.advance(200)
	p.advance(200)
	p.done()
	if strings.Contains(plain.String(), "\r") || !strings.Contains(plain.String(), "200/400") || !strings.Contains(plain.String(), "400/400") {
		t.Errorf("plain progress is not lines with counts")
	}

	var term bytes.Buffer
	bar := &progress{w: &term, terminal: true}
	bar.start("c1", 2, 400)
	bar.advance(200)
	bar.advance(200)
	bar.done()
	out := term.String()
	if strings.Count(out, "\r[") != 2 || !strings.Contains(out, "] 200/400") || !strings.Contains(out, strings.Repeat("#", 40)+"] 400/400") {
		t.Errorf("terminal progress is not a bar redrawn in place")
	}
}
