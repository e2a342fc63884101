// Package crashtest kills `accounts serve` with SIGKILL while it is writing,
// restarts it on the same data, and checks that every write it acknowledged
// survived, that every row still opens, and that the audit chains are intact.
//
// A crash is the one failure a durable store must survive without help:
// SQLite's WAL and PostgreSQL's commit protocol only keep an acknowledgement
// true if the service acknowledges after its commit is durable, commits each
// write with its audit entry, and never answers from state it has not
// committed. These tests run on SQLite always and on PostgreSQL when
// ACCOUNTS_TEST_POSTGRES names a server (they skip, saying so, without one).
package crashtest
