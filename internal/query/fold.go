package query

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Fold is the form in which case-insensitive operators (iexact,
// icontains, istartswith, iendswith, _search) compare text: two strings
// match without case exactly when PostgreSQL's upper() makes them equal,
// character by character (what Pigello's Django filters compare: UPPER(x)
// LIKE UPPER(y)). So "YILDIZ" finds "Yıldız" and "ΣΊΣΥΦΟΣ" finds
// "Σίσυφος", while "İ" and "i", or the Kelvin sign and "k", stay apart.
// Each character is written in the lower case of its upper case, where
// that lower case has the same upper case (ASCII is lower-cased as by
// strings.ToLower), else in its upper case: a canonical member of the
// characters that upper() makes one. Search tokens are computed over
// this form (searchindex).
func Fold(s string) string {
	if isASCII(s) {
		return strings.ToLower(s)
	}
	return strings.Map(foldRune, s)
}

func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		return rune(lowerASCII(byte(r)))
	}
	u := unicode.ToUpper(r)
	if l := unicode.ToLower(u); unicode.ToUpper(l) == u {
		return l
	}
	return u
}
