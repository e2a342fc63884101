package sqlite

import (
	"context"
	"fmt"
	"time"
)

// LimitPages caps the database file at its current size plus extra pages
// (PRAGMA max_page_count, on the writer's one connection), or lifts the cap
// when extra is negative: a disk that fills, for tests, without a file
// system of its own.
func LimitPages(ctx context.Context, db *DB, extra int) error {
	limit := int64(1 << 30)
	if extra >= 0 {
		if err := db.writer.QueryRowContext(ctx, "PRAGMA page_count").Scan(&limit); err != nil {
			return err
		}
		limit += int64(extra)
	}
	_, err := db.writer.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", limit))
	return err
}

// OpenEachRead makes every read open a new connection (none kept idle),
// as a busy pool does when it grows.
func OpenEachRead(db *DB) { db.reader.SetMaxIdleConns(0) }

// SetCheckpointEvery sets the checkpointer's period of the stores opened
// after it, and returns the function that restores it.
func SetCheckpointEvery(d time.Duration) (restore func()) {
	was := checkpointEvery
	checkpointEvery = d
	return func() { checkpointEvery = was }
}
