//! SQLite's WAL checkpoints on a clock, so that a commit's exposure to power loss is bounded in
//! time.
//!
//! With `synchronous = NORMAL` (see [`super::connect`]) a commit is written to the WAL, not
//! fsynced, when it returns: it survives the process being killed; the WAL is fsynced at each
//! checkpoint. SQLite checkpoints from the writer when a commit takes the WAL past 1,000 pages,
//! so on a quiet server the commits since the last checkpoint (a SCIM write takes about a dozen
//! pages) could wait for hours, and power loss or an OS crash could roll all of them back.
//! Here a thread of its own, on a connection of its own, runs a `PASSIVE` checkpoint every
//! [`interval`] (one second by default; with nothing new in the WAL it reads a header and does no
//! I/O): a passive checkpoint waits for no reader and blocks neither the writer nor a reader, and
//! copies what the readers allow. Power loss now rolls back at most about one interval of commits, however
//! quiet the server. SQLite's own checkpoint stays as it was: under load it runs first.
//!
//! Measured (docs/performance.md, "SQLite checkpoints"): no change in CPU or throughput at the
//! default. Checkpointing here *instead of* in the writer (`wal_autocheckpoint` raised, the
//! thread every 50 ms) moved the writes' CPU per request by nothing, raised their throughput
//! 11–33 % and lowered their p50, but raised their p99 at 16 in flight (a WAL restart fsyncs the
//! WAL's header on the writer while the checkpoint's fsyncs are in flight), so it was not taken.
//!
//! `FEDGATE_SQLITE_CHECKPOINT_MS` sets the interval (default [`DEFAULT_INTERVAL_MS`]); `0` turns
//! the thread off (SQLite's own checkpoints only, as before Dec 8).
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The checkpointer's default period.
pub const DEFAULT_INTERVAL_MS: u64 = 1000;
/// Database files with a checkpointer at once (tests open many); the oldest stops past this.
const MAX_FILES: usize = 32;

/// Checkpoints that found new frames, run by this process's checkpointers, and the WAL frames
/// they copied (approximate across a WAL restart).
static CHECKPOINTS: AtomicU64 = AtomicU64::new(0);
static FRAMES_COPIED: AtomicU64 = AtomicU64::new(0);

/// (checkpoints that found new frames, WAL frames copied) so far, for `/metrics`.
pub fn counters() -> (u64, u64) {
    (CHECKPOINTS.load(Ordering::Relaxed), FRAMES_COPIED.load(Ordering::Relaxed))
}

/// The checkpointer's period; `None` when it is turned off.
pub fn interval() -> Option<Duration> {
    static MS: OnceLock<u64> = OnceLock::new();
    let ms = *MS.get_or_init(|| {
        std::env::var("FEDGATE_SQLITE_CHECKPOINT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_INTERVAL_MS)
    });
    (ms > 0).then(|| Duration::from_millis(ms))
}

struct Running {
    path: PathBuf,
    /// The file's inode: a file made again at the same path (a restored copy, a test's new
    /// database) is another database and gets a checkpointer of its own.
    inode: u64,
    stop: Arc<AtomicBool>,
}

fn inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

fn registry() -> &'static Mutex<Vec<Running>> {
    static R: OnceLock<Mutex<Vec<Running>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(Vec::new()))
}

/// Starts the checkpointer of the database file at `path`, unless one runs already. It stops
/// when the file is gone or replaced (a test's temporary database), or when [`MAX_FILES`] newer
/// files have one.
pub fn start(path: &Path) {
    let Some(every) = interval() else { return };
    let Some(ino) = inode(path) else { return };
    let Ok(mut reg) = registry().lock() else { return };
    for r in reg.iter().filter(|r| r.path == path && r.inode != ino) {
        r.stop.store(true, Ordering::Relaxed);
    }
    reg.retain(|r| !r.stop.load(Ordering::Relaxed));
    if reg.iter().any(|r| r.path == path) {
        return;
    }
    if reg.len() >= MAX_FILES {
        let oldest = reg.remove(0);
        oldest.stop.store(true, Ordering::Relaxed);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (p, s) = (path.to_path_buf(), stop.clone());
    let spawned = std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || run(&p, ino, &s, every));
    match spawned {
        Ok(_) => reg.push(Running { path: path.to_path_buf(), inode: ino, stop }),
        Err(e) => tracing::warn!(error = %e, "could not start the SQLite checkpointer: SQLite checkpoints itself"),
    }
}

fn open(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let c = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )?;
    // The checkpoint fsyncs the WAL, then the database file, as the writer's own would.
    c.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(c)
}

/// One passive checkpoint: (frames in the WAL, frames copied into the database), or `None` when
/// the database is not in WAL mode or another checkpoint was running.
fn checkpoint(c: &rusqlite::Connection) -> rusqlite::Result<Option<(i64, i64)>> {
    let (busy, log, copied) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    })?;
    Ok((busy == 0 && log >= 0).then_some((log, copied)))
}

fn run(path: &Path, ino: u64, stop: &AtomicBool, every: Duration) {
    let conn = match open(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "could not open the SQLite checkpointer's connection: SQLite checkpoints itself");
            stop.store(true, Ordering::Relaxed);
            return;
        }
    };
    // The WAL as the last checkpoint left it (frames, frames copied): unchanged, nothing is new.
    let mut last = None;
    let mut failures = 0u32;
    loop {
        std::thread::sleep(every);
        if stop.load(Ordering::Relaxed) || inode(path) != Some(ino) {
            break;
        }
        match checkpoint(&conn) {
            Ok(Some((log, copied))) => {
                failures = 0;
                if last != Some((log, copied)) {
                    CHECKPOINTS.fetch_add(1, Ordering::Relaxed);
                    // Counted from the last checkpoint's in the same WAL, from 0 in a restarted one.
                    let before = match last {
                        Some((l, c)) if l <= log => c,
                        _ => 0,
                    };
                    FRAMES_COPIED.fetch_add(u64::try_from(copied - before).unwrap_or(0), Ordering::Relaxed);
                }
                last = Some((log, copied));
            }
            Ok(None) => {}
            Err(e) => {
                failures = failures.wrapping_add(1);
                // Once, then every 60th: a database that went away for good stops the thread above.
                if failures % 60 == 1 {
                    tracing::warn!(error = %e, "SQLite checkpoint failed (SQLite's own, every 1,000 pages, still run)");
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::sqlx::Row;

    #[test]
    fn a_passive_checkpoint_copies_the_wal_and_the_writer_restarts_it() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("t.db");
        let w = rusqlite::Connection::open(&path)?;
        w.pragma_update(None, "journal_mode", "WAL")?;
        w.pragma_update(None, "wal_autocheckpoint", 0)?;
        w.execute_batch("CREATE TABLE t (x BLOB); INSERT INTO t VALUES (zeroblob(100000));")?;
        let c = open(&path)?;
        let first = checkpoint(&c)?;
        assert!(matches!(first, Some((log, copied)) if log > 0 && copied == log), "{first:?}");
        // The next write starts the WAL over: it holds only that write's frames.
        w.execute("INSERT INTO t VALUES (1)", [])?;
        let second = checkpoint(&c)?;
        assert!(
            matches!((first, second), (Some((l1, _)), Some((l2, c2))) if l2 > 0 && l2 < l1 && c2 == l2),
            "{second:?}"
        );
        Ok(())
    }

    /// The pool's connection is in WAL mode with `synchronous = NORMAL`, and the file's
    /// checkpointer copies what the writer commits long before SQLite's own 1,000 pages. (A second `map_sqlx_sqlite_opts` in
    /// `connect` once replaced the first, and the database ran in rollback-journal mode.)
    #[tokio::test]
    async fn the_pool_writes_a_wal_that_the_checkpointer_copies() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.db");
        let db = crate::store::connect(&format!("sqlite://{}?mode=rwc", path.display()), 1, 5).await?;
        let mut c = db.get_sqlite_connection_pool().acquire().await?;
        let mode: String = sea_orm::sqlx::query("PRAGMA journal_mode").fetch_one(&mut *c).await?.try_get(0)?;
        assert_eq!(mode, "wal");
        let sync: i64 = sea_orm::sqlx::query("PRAGMA synchronous").fetch_one(&mut *c).await?.try_get(0)?;
        assert_eq!(sync, 1, "NORMAL");
        let auto: i64 = sea_orm::sqlx::query("PRAGMA wal_autocheckpoint").fetch_one(&mut *c).await?.try_get(0)?;
        assert_eq!(auto, 1000, "SQLite's own checkpoints as they were");
        if interval().is_none() {
            return Ok(()); // FEDGATE_SQLITE_CHECKPOINT_MS=0: SQLite's own checkpoints only.
        }
        sea_orm::sqlx::query("CREATE TABLE t (x BLOB)").execute(&mut *c).await?;
        sea_orm::sqlx::query("INSERT INTO t VALUES (zeroblob(100000))").execute(&mut *c).await?;
        drop(c);
        // The blob is in the WAL (25 pages, far below SQLite's 1,000); the thread copies it into the
        // database file within a few of its periods (a bounded wait for the outcome, not a timing
        // check).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path)?.len() < 100_000 {
            assert!(std::time::Instant::now() < deadline, "the WAL was never copied into the database file");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(registry().lock().map_err(|_| "poisoned")?.iter().any(|r| r.path == path));
        Ok(())
    }

    /// A database made again at the same path is another file: it gets its own checkpointer,
    /// and the old file's stops.
    #[test]
    fn a_file_made_again_at_the_same_path_gets_its_own_checkpointer() -> Result<(), Box<dyn std::error::Error>> {
        if interval().is_none() {
            return Ok(());
        }
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("r.db");
        let first = dir.path().join("first.db");
        std::fs::write(&path, b"")?;
        start(&path);
        let stop_of = |ino: Option<u64>| -> Result<Option<bool>, &'static str> {
            let reg = registry().lock().map_err(|_| "poisoned")?;
            Ok(reg.iter().find(|r| r.path == path && Some(r.inode) == ino).map(|r| r.stop.load(Ordering::Relaxed)))
        };
        let old = inode(&path);
        assert_eq!(stop_of(old)?, Some(false));
        // Moved away (kept, so its inode cannot be reused) and made again.
        std::fs::rename(&path, &first)?;
        std::fs::write(&path, b"")?;
        start(&path);
        assert_eq!(stop_of(old)?, None, "the old file's checkpointer was told to stop");
        assert_eq!(stop_of(inode(&path))?, Some(false));
        Ok(())
    }
}
