//! The database handles code above the store passes through to it: a pool ([`super::Db`]) or a
//! transaction ([`Tx`]). Only the store queries; the layers above name these, never sea-orm's
//! query traits.
pub use super::inline::ReadConn as Conn;
pub use sea_orm::{DatabaseTransaction as Tx, DbErr};
