//! SQLite's query planner stability guarantee (QPSG), turned on for every connection.
//!
//! **Why.** Without it, SQLite (3.51, as bundled) lets a plan depend on the values bound to some
//! parameters, and marks such a statement to be *prepared again* each time one of those
//! parameters is bound. `LIMIT ?` is one of them, and sea-orm puts `LIMIT ?` on every `.one()`;
//! the SCIM list and key-lookup pages have it too. Each execution of those statements therefore
//! parsed and planned the SQL again, cache or no cache: the profile of a `userName eq` lookup
//! showed `sqlite3Reprepare` under `sqlite3_step` (docs/performance.md, "Statements prepared
//! once").
//!
//! **What is given up.** The planner no longer looks at bound values. It would have used them
//! for three things, none of which fedgate's SQL needs:
//! - a `LIKE ?` prefix served by an index: SCIM's `sw` carries its own byte range
//!   (`store::scim_sql`), and `co` the trigram index;
//! - STAT4 histograms: fedgate never runs `ANALYZE` on SQLite, so there are none;
//! - partial indexes whose condition compares a column with a constant: fedgate's partial
//!   indexes test `IS NULL` / `IS NOT NULL` only.
//!
//! The plan tests (`tests/it/scim_growth.rs`, `tests/it/keyset_plans.rs`) read the plans of the filters on a connection with
//! QPSG on, so an index lost to it would fail them.
use sea_orm::sqlx::sqlite::SqliteConnection;
use sea_orm::sqlx::Error;

/// Turns QPSG on for a sqlx connection (the pool's `after_connect`, `store::connect`).
pub async fn sqlx(conn: &mut SqliteConnection) -> Result<(), Error> {
    db_config(conn, 1).await.map(drop)
}

/// `SQLITE_DBCONFIG_ENABLE_QPSG` on a sqlx connection: `arg` 1 turns it on, a negative `arg`
/// leaves it as it is; returns the setting after the call.
async fn db_config(conn: &mut SqliteConnection, arg: std::os::raw::c_int) -> Result<bool, Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle();
    let mut now: std::os::raw::c_int = 0;
    // SAFETY: `db` is the open handle of this connection, held locked by `handle` (sqlx's worker
    // runs nothing on it meanwhile) for the whole call. SQLITE_DBCONFIG_ENABLE_QPSG takes an int
    // (negative: leave unchanged) and an `int*` that receives the setting, which is `now`, live
    // on this stack frame.
    #[allow(unsafe_code)]
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_config(
            db.as_ptr(),
            rusqlite::ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
            arg,
            &mut now as *mut _,
        )
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        return Err(Error::Protocol(format!("sqlite3_db_config(SQLITE_DBCONFIG_ENABLE_QPSG): error {rc}")));
    }
    Ok(now != 0)
}

/// Turns QPSG on for a rusqlite connection (the inline readers, `store::inline`).
pub fn rusqlite(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use sea_orm::sqlx::Connection;

    /// What the setting is for: a `LIMIT ?` statement bound again and again is prepared once.
    #[test]
    fn limit_parameters_no_longer_reprepare() -> rusqlite::Result<()> {
        use rusqlite::StatementStatus::RePrepare;
        let runs = |qpsg: bool| -> rusqlite::Result<i32> {
            let c = rusqlite::Connection::open_in_memory()?;
            if qpsg {
                super::rusqlite(&c)?;
            }
            c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('a'), ('b');")?;
            let mut st = c.prepare("SELECT v FROM t WHERE id > ?1 ORDER BY id LIMIT ?2")?;
            for n in 1..=5 {
                st.query_map((0, n), |r| r.get::<_, String>(0))?.for_each(drop);
            }
            Ok(st.get_status(RePrepare))
        };
        assert!(runs(false)? >= 4, "without QPSG each new LIMIT binding prepares the statement again");
        assert_eq!(runs(true)?, 0);
        Ok(())
    }

    /// Every connection fedgate opens on a SQLite file has it: the pool's (also one it opens
    /// again later) and the inline readers'.
    #[tokio::test]
    async fn every_connection_fedgate_opens_has_it() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("q.db");
        let db = crate::store::connect(&format!("sqlite://{}?mode=rwc", path.display()), 1, 5).await?;
        let pool = db.get_sqlite_connection_pool();
        for _ in 0..2 {
            let mut c = pool.acquire().await?;
            assert!(super::db_config(&mut c, -1).await?, "the pool's connection");
            // Closed, so the next acquire opens a new one.
            c.detach();
        }
        let reader = super::super::inline::open(&path)?;
        assert!(reader.db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG)?, "an inline reader");
        Ok(())
    }

    #[tokio::test]
    async fn sets_and_reads_on_a_sqlx_connection() -> Result<(), sea_orm::sqlx::Error> {
        let mut c = sea_orm::sqlx::sqlite::SqliteConnection::connect("sqlite::memory:").await?;
        assert!(!super::db_config(&mut c, -1).await?, "off by default");
        super::sqlx(&mut c).await?;
        assert!(super::db_config(&mut c, -1).await?);
        Ok(())
    }
}
