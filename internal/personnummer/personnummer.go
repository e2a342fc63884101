// Package personnummer parses and validates Swedish personal identity numbers
// (personnummer) and coordination numbers (samordningsnummer) in the forms the
// Accounts API accepts, and returns them in the 12-digit canonical form the
// service stores.
//
// Errors never contain the number itself: a personal identity number is
// personal data and must not reach a log line or an error body.
package personnummer

import (
	"errors"
	"time"
)

// Errors returned by Parse. They name the rule that failed, never the value.
var (
	ErrFormat     = errors.New("personnummer: must be YYYYMMDDNNNC or YYYYMMDD-NNNC")
	ErrCentury    = errors.New("personnummer: century must be 18, 19 or 20")
	ErrDate       = errors.New("personnummer: date does not exist")
	ErrBirthNum   = errors.New("personnummer: birth number must not be 000")
	ErrCheckDigit = errors.New("personnummer: check digit does not match")
)

// Number is a validated personal identity number.
type Number struct {
	canonical string
}

// Canonical returns the 12-digit form, YYYYMMDDNNNC.
func (n Number) Canonical() string { return n.canonical }

// Parse validates s, which must be 12 ASCII digits, or 8 digits, a '-' or '+'
// separator and 4 digits. It checks the century, that the date exists (a
// coordination number carries day+60), that the birth number is not 000, and
// the Luhn check digit over the last ten digits.
func Parse(s string) (Number, error) {
	var digits [12]byte
	switch len(s) {
	case 12:
		for i := 0; i < 12; i++ {
			digits[i] = s[i]
		}
	case 13:
		if s[8] != '-' && s[8] != '+' {
			return Number{}, ErrFormat
		}
		copy(digits[:8], s[:8])
		copy(digits[8:], s[9:])
	default:
		return Number{}, ErrFormat
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return Number{}, ErrFormat
		}
	}
	num := func(from, to int) int {
		v := 0
		for _, c := range digits[from:to] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	century := num(0, 2)
	if century < 18 || century > 20 {
		return Number{}, ErrCentury
	}
	year, month, day := num(0, 4), num(4, 6), num(6, 8)
	if day > 60 { // a coordination number
		day -= 60
	}
	if month < 1 || month > 12 || day < 1 || day > 31 {
		return Number{}, ErrDate
	}
	date := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if date.Year() != year || int(date.Month()) != month || date.Day() != day {
		return Number{}, ErrDate
	}
	if num(8, 11) == 0 {
		return Number{}, ErrBirthNum
	}
	if !luhnValid(digits[2:]) {
		return Number{}, ErrCheckDigit
	}
	return Number{canonical: string(digits[:])}, nil
}

// luhnValid checks the Luhn checksum of ASCII digits, the last being the check digit.
func luhnValid(d []byte) bool {
	sum := 0
	for i, c := range d {
		v := int(c - '0')
		if (len(d)-1-i)%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}
