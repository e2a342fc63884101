package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"path/filepath"
	"time"

	"accounts/internal/store/sqlite"

	"github.com/jackc/pgx/v5"
)

// diskRowBytes is the size of the value each disk commit writes: about a
// sealed protected identity's row.
const diskRowBytes = 512

// committer commits one single-row transaction.
type committer func(ctx context.Context, value []byte) error

// disk measures the machine's durable commit rate under the store's own
// durability settings: one goroutine, one connection, a single-row INSERT
// and its COMMIT in a loop, no HTTP. No request that commits once can be
// answered faster than this on this machine — except that concurrent
// requests may share a commit (group commit).
func (b *bench) disk(d time.Duration) slice {
	ctx := context.Background()
	if b.commit == nil {
		b.commit, b.commitNote = b.openDisk(ctx)
	}
	return slice{win: commitLoop(ctx, b.commit, b.s.Warmup, d), clients: 1, note: b.commitNote + ", 1 connection, no HTTP"}
}

// openDisk makes the disk scenario's table and returns how to commit a row
// to it, and the durability settings it commits under.
func (b *bench) openDisk(ctx context.Context) (commit committer, note string) {
	if b.engine == "sqlite" {
		// A file of its own beside the store's, opened with the DSN of the
		// store's writer: WAL, synchronous=FULL, BEGIN IMMEDIATE.
		db, err := sql.Open("sqlite", sqlite.WriterDSN(filepath.Join(filepath.Dir(b.database), "disk.db")))
		if err != nil {
			b.r.Fatal(err)
		}
		b.r.Cleanup(func() { db.Close() })
		db.SetMaxOpenConns(1)
		if _, err := db.ExecContext(ctx, "CREATE TABLE disk (id INTEGER PRIMARY KEY, value BLOB NOT NULL)"); err != nil {
			b.r.Fatalf("disk: %v", err)
		}
		commit = func(ctx context.Context, value []byte) error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO disk (value) VALUES (?)", value); err != nil {
				tx.Rollback()
				return err
			}
			return tx.Commit()
		}
		note = "journal_mode=WAL, synchronous=FULL"
	} else {
		// One connection to the run's schema, whose server's
		// synchronous_commit is what the store gets.
		conn, err := pgx.Connect(ctx, b.database)
		if err != nil {
			b.r.Fatalf("disk: %v", err)
		}
		b.r.Cleanup(func() { conn.Close(context.Background()) })
		var sync string
		if err := conn.QueryRow(ctx, "SHOW synchronous_commit").Scan(&sync); err != nil {
			b.r.Fatalf("disk: %v", err)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE disk (id bigserial PRIMARY KEY, value bytea NOT NULL)"); err != nil {
			b.r.Fatalf("disk: %v", err)
		}
		commit = func(ctx context.Context, value []byte) error {
			tx, err := conn.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO disk (value) VALUES ($1)", value); err != nil {
				tx.Rollback(ctx)
				return err
			}
			return tx.Commit(ctx)
		}
		note = "synchronous_commit=" + sync
	}
	return commit, note
}

// commitLoop commits single rows one after another for warmup, then for
// dur, and returns the measured ones.
func commitLoop(ctx context.Context, commit committer, warmup, dur time.Duration) window {
	value := make([]byte, diskRowBytes)
	rand.Read(value)
	start := time.Now()
	t0, t1 := start.Add(warmup), start.Add(warmup+dur)
	win := window{errors: map[string]int{}}
	for {
		begin := time.Now()
		err := commit(ctx, value)
		end := time.Now()
		if end.After(t1) {
			break
		}
		if end.Before(t0) {
			continue
		}
		win.latencies = append(win.latencies, end.Sub(begin))
		if err != nil {
			win.errors[fmt.Sprintf("%T", err)]++
		}
	}
	win.elapsed = t1.Sub(t0)
	return win
}
