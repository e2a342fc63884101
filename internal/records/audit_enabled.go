//go:build !accounts_noaudit

package records

// auditEnabled is always true in the service. Only a build with the
// accounts_noaudit tag, made by the benchmark that measures what auditing
// costs, turns it off; no flag or setting can.
const auditEnabled = true
