//! SCIM 2.0 provisioning: SCIM columns on users (lower-cased userName and email for indexed
//! case-insensitive lookups, the stored SCIM resource, a version for ETags), groups and their
//! members, per-tenant SCIM bearer tokens (hashed) and the per-tenant SCIM request log.
use crate::schema_util::{idx, t};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn add_col(col: ColumnDef) -> TableAlterStatement {
    Table::alter().table("users").add_column(col).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            ColumnDef::new("user_name_lower").string().null().to_owned(),
            ColumnDef::new("email_lower").string().null().to_owned(),
            ColumnDef::new("scim").text().null().to_owned(),
            ColumnDef::new("version").big_integer().not_null().default(0).to_owned(),
        ] {
            m.alter_table(add_col(col)).await?;
        }
        let tables = vec![
            t("scim_groups")
                .col(string("id").primary_key())
                .col(string("tenant_id"))
                .col(string("display_name"))
                .col(string("display_name_lower"))
                .col(string_null("external_id"))
                .col(text("scim"))
                .col(big_integer("version"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .to_owned(),
            t("scim_group_members")
                .col(string("group_id"))
                .col(string("user_id"))
                .col(string("tenant_id"))
                .col(big_integer("created_at"))
                .primary_key(Index::create().col("group_id").col("user_id"))
                .to_owned(),
            t("scim_tokens")
                .col(string("id").primary_key())
                .col(string("tenant_id"))
                .col(string("name"))
                .col(string_uniq("token_hash"))
                .col(big_integer("created_at"))
                .col(big_integer_null("last_used_at"))
                .col(big_integer_null("revoked_at"))
                .to_owned(),
            t("scim_requests")
                .col(string("id").primary_key())
                .col(string("tenant_id"))
                .col(string("method"))
                .col(text("path"))
                .col(integer("status"))
                .col(big_integer("duration_us"))
                .col(string_null("error_code"))
                .col(big_integer("created_at"))
                .to_owned(),
        ];
        for table in tables {
            m.create_table(table).await?;
        }
        for i in [
            idx("idx_users_tenant_username_lower", "users", &["tenant_id", "user_name_lower"], true),
            idx("idx_users_tenant_email_lower", "users", &["tenant_id", "email_lower"], false),
            idx("idx_scim_groups_tenant", "scim_groups", &["tenant_id", "id"], false),
            idx("idx_scim_groups_tenant_name", "scim_groups", &["tenant_id", "display_name_lower"], false),
            idx("idx_scim_groups_tenant_external", "scim_groups", &["tenant_id", "external_id"], false),
            idx("idx_scim_members_user", "scim_group_members", &["user_id"], false),
            idx("idx_scim_tokens_tenant", "scim_tokens", &["tenant_id"], false),
            idx("idx_scim_requests_tenant", "scim_requests", &["tenant_id", "id"], false),
        ] {
            m.create_index(i).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in ["scim_requests", "scim_tokens", "scim_group_members", "scim_groups"] {
            m.drop_table(Table::drop().table(name).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
