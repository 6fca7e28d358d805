//! Helpers shared by the migrations (building statements only; no behaviour of their own).
use sea_orm_migration::prelude::*;

/// `CREATE TABLE IF NOT EXISTS name`.
pub fn t(name: &'static str) -> TableCreateStatement {
    Table::create().table(name).if_not_exists().to_owned()
}

/// `CREATE [UNIQUE] INDEX IF NOT EXISTS name ON table (cols)`.
pub fn idx(name: &'static str, table: &'static str, cols: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(table).if_not_exists();
    for c in cols {
        i.col(*c);
    }
    if unique {
        i.unique();
    }
    i.to_owned()
}
