//! Runs the list queries of [`super::scim_sql::ListSql`]: the count, then one page of rows.
use super::scim_sql::{Dialect, ListSql, Param};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, Statement};

/// The dialect of a connection.
pub fn dialect(db: &impl ConnectionTrait) -> Dialect {
    match db.get_database_backend() {
        DbBackend::Postgres => Dialect::Postgres,
        _ => Dialect::Sqlite,
    }
}

fn values(params: Vec<Param>) -> Vec<sea_orm::Value> {
    params
        .into_iter()
        .map(|p| match p {
            Param::Text(s) => s.into(),
            Param::Int(i) => i.into(),
            Param::Float(f) => f.into(),
            Param::Bool(b) => b.into(),
        })
        .collect()
}

/// The number of matching rows, and the rows of the page (`count` rows from the 1-based
/// `start`; no query for the rows when `count` is 0).
pub async fn run<E>(
    db: &impl ConnectionTrait,
    q: ListSql,
    start: i64,
    count: i64,
) -> Result<(i64, Vec<E::Model>), DbErr>
where
    E: EntityTrait,
    E::Model: FromQueryResult,
{
    let backend = db.get_database_backend();
    let (count_sql, count_params) = q.count_query();
    let total: i64 = db
        .query_one_raw(Statement::from_sql_and_values(backend, count_sql, values(count_params)))
        .await?
        .and_then(|r| r.try_get::<i64>("", "n").ok())
        .unwrap_or(0);
    if count <= 0 {
        return Ok((total, Vec::new()));
    }
    let (page_sql, page_params) = q.page_query(start, count);
    let rows =
        E::find().from_raw_sql(Statement::from_sql_and_values(backend, page_sql, values(page_params))).all(db).await?;
    Ok((total, rows))
}
