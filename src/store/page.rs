//! The one keyset pagination of the admin API's lists: rows ordered by a unique text key, a
//! page of `limit` rows, and the key of its last row as the cursor of the next page (absent on
//! the last page). The cursor is opaque to callers: the key itself, as before.
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};

/// Which way the key runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Oldest first (ids are sortable by creation).
    Asc,
    /// Newest first.
    Desc,
}

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'a> {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<&'a str>,
    pub limit: u64,
}

/// One page of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<R> {
    pub rows: Vec<R>,
    /// The cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<R> Page<R> {
    /// Builds a page from up to `limit + 1` rows in page order.
    pub fn from_rows(mut rows: Vec<R>, limit: u64, key: impl Fn(&R) -> String) -> Self {
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(key) } else { None };
        Page { rows, next_cursor }
    }

    pub fn map<T>(self, f: impl FnMut(R) -> T) -> Page<T> {
        Page { rows: self.rows.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

/// Runs `query` (already filtered, e.g. by tenant) as one page keyed by `col`.
pub async fn fetch<E, C>(
    db: &impl ConnectionTrait,
    query: Select<E>,
    col: C,
    order: Order,
    req: PageRequest<'_>,
    key: impl Fn(&E::Model) -> String,
) -> Result<Page<E::Model>, DbErr>
where
    E: EntityTrait,
    C: ColumnTrait,
{
    let mut q = match order {
        Order::Asc => query.order_by_asc(col),
        Order::Desc => query.order_by_desc(col),
    };
    if let Some(c) = req.cursor {
        q = match order {
            Order::Asc => q.filter(col.gt(c)),
            Order::Desc => q.filter(col.lt(c)),
        };
    }
    let rows = q.limit(req.limit + 1).all(db).await?;
    Ok(Page::from_rows(rows, req.limit, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn from_rows_cuts_and_points_at_the_last_row() {
        let p = Page::from_rows(vec![1, 2, 3], 2, |r| r.to_string());
        assert_eq!(p, Page { rows: vec![1, 2], next_cursor: Some("2".into()) });
        let p = Page::from_rows(vec![1, 2], 2, |r| r.to_string());
        assert_eq!(p, Page { rows: vec![1, 2], next_cursor: None });
    }
}
