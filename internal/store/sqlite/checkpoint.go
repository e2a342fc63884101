package sqlite

import (
	"database/sql"
	"sync"
	"sync/atomic"
	"time"
)

// checkpointEvery is how often the checkpointer copies what the writer
// committed since its last turn from the WAL into the database file.
//
// Left to the writer, a checkpoint runs inside the commit that takes the
// WAL past wal_autocheckpoint's 10,000 pages: that batch's writers, and
// every request queued behind them (reads too, whose audit entries are
// written by the same writer), wait while up to 40 MiB is copied and the
// file synced. Those stalls were the p99s of the benchmark's list and
// create and slowed bulk writes by a quarter (docs/benchmarks.md). A
// checkpoint of its own connection copies beside the writer, which goes
// on committing. It copies what the writer committed in the last second,
// the hot pages (B-tree roots, audit heads, the search index's segments)
// once each, as the 10,000-page setting meant to: more often would copy
// them again and again.
//
// The writer's own checkpoint stays as the backstop and for the WAL's
// restart: SQLite starts the WAL over only once a checkpoint has copied
// all of it, and this one can't while writes go on. The writer's, run when
// the WAL reaches 10,000 pages again, then has only the last second's
// pages left to copy.
var checkpointEvery = time.Second

// checkpointer runs SQLite's passive checkpoint on a connection of its own
// every checkpointEvery, when the writer has committed since its last turn.
// A passive checkpoint takes no lock that a writer or reader waits for: it
// copies the WAL's frames that no reader still needs, and leaves the rest
// for the next turn.
type checkpointer struct {
	conn *sql.DB
	// wrote is set by each commit and cleared by each turn.
	wrote atomic.Bool
	stop  chan struct{}
	done  sync.WaitGroup
}

// startCheckpointer opens the checkpointer's connection to path and starts
// its turns.
func startCheckpointer(path string) (*checkpointer, error) {
	conn, err := sql.Open("sqlite", dsn(path, "deferred"))
	if err != nil {
		return nil, err
	}
	conn.SetMaxOpenConns(1)
	c := &checkpointer{conn: conn, stop: make(chan struct{})}
	c.done.Add(1)
	go c.run(checkpointEvery)
	return c, nil
}

// committed tells the checkpointer that the writer has committed.
func (c *checkpointer) committed() { c.wrote.Store(true) }

func (c *checkpointer) run(every time.Duration) {
	defer c.done.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		if c.wrote.Swap(false) {
			// A failed checkpoint (a full disk, an I/O error) loses
			// nothing: the frames stay in the WAL for the next turn or
			// the writer's checkpoint, and the writes that meet the
			// same failure make Ready report it.
			c.conn.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

// close ends the turns, waiting for one under way, and closes the
// connection.
func (c *checkpointer) close() error {
	close(c.stop)
	c.done.Wait()
	return c.conn.Close()
}
