//! Online backup of an SQLite database: `VACUUM INTO` writes a consistent copy of the live
//! database (one read transaction; writers carry on) to a new file. PostgreSQL is backed up with
//! its own tools (`pg_dump`, base backups); see docs/operations.md#backup-and-restore.
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

/// Writes a consistent copy of the SQLite database to `path` (which must not exist yet).
pub async fn sqlite_to(db: &impl ConnectionTrait, path: &str) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return Err(DbErr::Custom(
            "`fedgate backup` copies SQLite databases; back PostgreSQL up with pg_dump or a base backup".into(),
        ));
    }
    db.execute_raw(Statement::from_sql_and_values(DbBackend::Sqlite, "VACUUM INTO ?", [path.into()])).await?;
    Ok(())
}
