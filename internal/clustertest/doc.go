// Package clustertest holds the tests of the service as it runs in
// production on PostgreSQL: several `accounts serve` processes on one
// database, and a database that goes away and comes back. They need a
// PostgreSQL server (ACCOUNTS_TEST_POSTGRES) and skip, saying so, without one;
// what holds for any engine (a revocation reaching every process) runs on
// SQLite as well.
package clustertest
