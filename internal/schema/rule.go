package schema

import "accounts/internal/apperr"

// Values holds an object's field values by field name: string (String,
// Email, Phone, SSN in canonical form, Date as YYYY-MM-DD, Ref as a UUID),
// bool, float64, or nil for null.
type Values map[string]any

// Rule is a cross-field rule, checked on an object as it will be after a write.
type Rule interface {
	Check(v Values, errs apperr.FieldErrors)
}

// ExactlyOne requires exactly one of two fields to be set: setting both is an
// error on each of them, setting neither an error on the object.
type ExactlyOne struct{ A, B string }

// Check implements Rule.
func (r ExactlyOne) Check(v Values, errs apperr.FieldErrors) {
	a, b := v[r.A] != nil, v[r.B] != nil
	switch {
	case a && b:
		errs.Add(r.A, "Can't be set together with "+r.B+".")
		errs.Add(r.B, "Can't be set together with "+r.A+".")
	case !a && !b:
		errs.Add(apperr.NonFieldErrors, "One of "+r.A+" or "+r.B+" must be set.")
	}
}

// AtLeastOne requires at least one of the fields to be set.
type AtLeastOne []string

// Check implements Rule.
func (r AtLeastOne) Check(v Values, errs apperr.FieldErrors) {
	for _, name := range r {
		if v[name] != nil {
			return
		}
	}
	msg := "At least one of "
	for i, name := range r {
		if i > 0 {
			msg += ", "
		}
		msg += name
	}
	errs.Add(apperr.NonFieldErrors, msg+" must be set.")
}
