//! Leases for scheduled jobs: each job runs once across every instance.
//!
//! A lease is a row in `locks` (`name` = `job:<job>`, `holder` = the instance, `updated_at` =
//! when it was taken). An instance takes a job's lease when nobody holds it or the holder's lease
//! has run out; one atomic statement (`INSERT ... ON CONFLICT DO UPDATE ... WHERE`) decides, so two
//! instances racing for it cannot both win, on SQLite or PostgreSQL. The winner runs the job; the
//! others skip it until the lease ends. A lease shorter than the job interval lets the next round
//! go to whichever instance asks first, so a dead instance's jobs move on by themselves.
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

/// Takes (or renews) the lease on `job` for `ttl` seconds. `true`: this instance runs it now.
pub async fn try_lease(db: &impl ConnectionTrait, job: &str, holder: &str, now: i64, ttl: i64) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO locks (name, holder, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, updated_at = EXCLUDED.updated_at \
             WHERE locks.holder = EXCLUDED.holder OR locks.updated_at <= $4"
        }
        _ => {
            "INSERT INTO locks (name, holder, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, updated_at = excluded.updated_at \
             WHERE locks.holder = excluded.holder OR locks.updated_at <= ?"
        }
    };
    let name = format!("job:{job}");
    let r = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [name.into(), holder.into(), now.into(), (now - ttl).into()],
        ))
        .await?;
    Ok(r.rows_affected() == 1)
}
