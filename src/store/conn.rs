//! What code above the store names when it passes a connection or a transaction through to
//! store functions: the pool (`Db`) and transactions both are one.
pub use sea_orm::ConnectionTrait as Conn;
pub use sea_orm::DatabaseTransaction as Tx;
