//! Email trust: the address an upstream IdP vouched for is kept on the identity (per connection),
//! apart from the user's profile email (which SCIM or the IdP may set). Tokens call only that
//! address verified, and only while its domain is one of the tenant's.
//!
//! Data, so that rows written before agree with the new rules:
//! - SCIM-managed users: `email_verified` false (SCIM never verifies an address; an adopted SSO
//!   user used to keep the flag while SCIM replaced the address).
//! - Users only SSO ever touched, with `email_verified` true: false when the address is not in a
//!   domain of the tenant; otherwise, when the user has exactly one identity, the address becomes
//!   that identity's `verified_email` (existing sessions keep `email_verified: true`). Users with
//!   several identities get theirs at their next login.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            ColumnDef::new("verified_email").string().null().to_owned(),
            ColumnDef::new("verified_email_domain").string().null().to_owned(),
        ] {
            m.alter_table(Table::alter().table("identities").add_column(col).to_owned()).await?;
        }
        let db = m.get_connection();
        let backend = db.get_database_backend();
        let p = |n: usize| match backend {
            DbBackend::Postgres => format!("${n}"),
            _ => "?".to_string(),
        };
        let exec = |sql: String, values: Vec<Value>| async move {
            db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await.map(|_| ())
        };
        exec(format!("UPDATE users SET email_verified = {} WHERE scim IS NOT NULL", p(1)), vec![false.into()]).await?;
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT u.id AS user_id, LOWER(u.email) AS email, d.domain AS domain, \
                     (SELECT COUNT(*) FROM identities o WHERE o.user_id = u.id) AS n, \
                     (SELECT MIN(o.id) FROM identities o WHERE o.user_id = u.id) AS identity_id \
                     FROM users u LEFT JOIN tenant_domains d ON d.tenant_id = u.tenant_id \
                     AND LOWER(u.email) LIKE ('%@' || d.domain) \
                     WHERE u.scim IS NULL AND u.email_verified = {} AND u.email IS NOT NULL",
                    p(1)
                ),
                [true.into()],
            ))
            .await?;
        for r in rows {
            let user_id: String = r.try_get("", "user_id")?;
            let email: String = r.try_get("", "email")?;
            let domain: Option<String> = r.try_get("", "domain")?;
            let n: i64 = r.try_get("", "n")?;
            let identity_id: Option<String> = r.try_get("", "identity_id")?;
            match (domain, identity_id) {
                (None, _) => {
                    exec(
                        format!("UPDATE users SET email_verified = {} WHERE id = {}", p(1), p(2)),
                        vec![false.into(), user_id.into()],
                    )
                    .await?
                }
                (Some(d), Some(i)) if n == 1 => {
                    exec(
                        format!(
                            "UPDATE identities SET verified_email = {}, verified_email_domain = {} WHERE id = {}",
                            p(1),
                            p(2),
                            p(3)
                        ),
                        vec![email.into(), d.into(), i.into()],
                    )
                    .await?
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in ["verified_email", "verified_email_domain"] {
            m.alter_table(Table::alter().table("identities").drop_column(col).to_owned()).await?;
        }
        Ok(())
    }
}
