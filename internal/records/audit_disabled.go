//go:build accounts_noaudit

package records

// auditEnabled is false only in benchmark builds (tag accounts_noaudit).
const auditEnabled = false
