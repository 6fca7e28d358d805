//! The foundation: admin keys, tenants and domains, OAuth clients, connections, signing keys,
//! pending logins, users and their upstream identities, sessions, codes, grants, refresh tokens.
//! All times are Unix seconds (BIGINT) so both databases agree on them.
use crate::schema_util::{idx, t};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let tables = vec![
            t("admin_keys")
                .col(string("id").primary_key())
                .col(string("name"))
                .col(string_uniq("token_hash"))
                .col(big_integer("created_at"))
                .col(big_integer_null("last_used_at"))
                .col(big_integer_null("revoked_at"))
                .to_owned(),
            t("tenants")
                .col(string("id").primary_key())
                .col(string_uniq("slug"))
                .col(string("name"))
                .col(text("settings"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .to_owned(),
            t("tenant_domains")
                .col(string("domain").primary_key())
                .col(string("tenant_id"))
                .col(big_integer("created_at"))
                .to_owned(),
            t("clients")
                .col(string("id").primary_key())
                .col(string("name"))
                .col(string("client_type"))
                .col(string_null("secret_hash"))
                .col(text("redirect_uris"))
                .col(text("post_logout_redirect_uris"))
                .col(text("grant_types"))
                .col(string("id_token_alg"))
                .col(string_null("backchannel_logout_uri"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .to_owned(),
            t("connections")
                .col(string("id").primary_key())
                .col(string("tenant_id"))
                .col(string("conn_type"))
                .col(string("name"))
                .col(boolean("enabled"))
                .col(text("config"))
                .col(text_null("secrets_enc"))
                .col(big_integer("version"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .to_owned(),
            t("signing_keys")
                .col(string("kid").primary_key())
                .col(string("alg"))
                .col(string("state"))
                .col(text("private_enc"))
                .col(text("public_jwk"))
                .col(big_integer("created_at"))
                .col(big_integer_null("activated_at"))
                .col(big_integer_null("retired_at"))
                .col(big_integer_null("expires_at"))
                .to_owned(),
            t("locks")
                .col(string("name").primary_key())
                .col(string("holder"))
                .col(big_integer("updated_at"))
                .to_owned(),
            t("logins")
                .col(string("id").primary_key())
                .col(string("client_id"))
                .col(text("redirect_uri"))
                .col(text("scope"))
                .col(text_null("state"))
                .col(text_null("nonce"))
                .col(string_null("code_challenge"))
                .col(string_null("prompt"))
                .col(big_integer_null("max_age"))
                .col(string_null("login_hint"))
                .col(string_null("tenant_id"))
                .col(string_null("connection_id"))
                .col(text_null("connector_state"))
                .col(string("binding_hash"))
                .col(string("status"))
                .col(string_null("error_code"))
                .col(big_integer("created_at"))
                .col(big_integer("expires_at"))
                .col(big_integer_null("completed_at"))
                .to_owned(),
            t("users")
                .col(string("id").primary_key())
                .col(string("tenant_id"))
                .col(string_null("user_name"))
                .col(string_null("email"))
                .col(boolean("email_verified"))
                .col(string_null("name"))
                .col(string_null("given_name"))
                .col(string_null("family_name"))
                .col(boolean("active"))
                .col(string_null("external_id"))
                .col(text("attributes"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .col(big_integer_null("deleted_at"))
                .to_owned(),
            t("identities")
                .col(string("id").primary_key())
                .col(string("tenant_id"))
                .col(string("connection_id"))
                .col(string("subject"))
                .col(string("user_id"))
                .col(text("attributes"))
                .col(text("groups"))
                .col(big_integer("created_at"))
                .col(big_integer("last_login_at"))
                .to_owned(),
            t("sessions")
                .col(string("id").primary_key())
                .col(string_uniq("cookie_hash"))
                .col(string("user_id"))
                .col(string("tenant_id"))
                .col(string("connection_id"))
                .col(big_integer("auth_time"))
                .col(text("amr"))
                .col(big_integer("created_at"))
                .col(big_integer("expires_at"))
                .col(big_integer_null("revoked_at"))
                .to_owned(),
            t("auth_codes")
                .col(string("code_hash").primary_key())
                .col(string("login_id"))
                .col(string("client_id"))
                .col(text("redirect_uri"))
                .col(string("user_id"))
                .col(string("session_id"))
                .col(text("scope"))
                .col(text_null("nonce"))
                .col(string_null("code_challenge"))
                .col(big_integer("auth_time"))
                .col(big_integer("created_at"))
                .col(big_integer("expires_at"))
                .col(big_integer_null("used_at"))
                .col(string_null("grant_id"))
                .to_owned(),
            t("grants")
                .col(string("id").primary_key())
                .col(string("client_id"))
                .col(string("user_id"))
                .col(string("tenant_id"))
                .col(string("session_id"))
                .col(text("scope"))
                .col(big_integer("auth_time"))
                .col(big_integer("created_at"))
                .col(big_integer("expires_at"))
                .col(big_integer_null("revoked_at"))
                .col(string_null("revoked_reason"))
                .to_owned(),
            t("refresh_tokens")
                .col(string("token_hash").primary_key())
                .col(string("grant_id"))
                .col(big_integer("created_at"))
                .col(big_integer("expires_at"))
                .col(big_integer_null("used_at"))
                .to_owned(),
            t("revoked_tokens").col(string("jti").primary_key()).col(big_integer("expires_at")).to_owned(),
        ];
        for table in tables {
            m.create_table(table).await?;
        }
        let indexes = vec![
            idx("idx_domains_tenant", "tenant_domains", &["tenant_id"], false),
            idx("idx_connections_tenant", "connections", &["tenant_id"], false),
            idx("idx_logins_expires", "logins", &["expires_at"], false),
            idx("idx_users_tenant", "users", &["tenant_id", "id"], false),
            idx("idx_users_tenant_email", "users", &["tenant_id", "email"], false),
            idx("idx_users_tenant_external", "users", &["tenant_id", "external_id"], false),
            idx("idx_identities_subject", "identities", &["connection_id", "subject"], true),
            idx("idx_identities_user", "identities", &["user_id"], false),
            idx("idx_sessions_user", "sessions", &["user_id"], false),
            idx("idx_sessions_expires", "sessions", &["expires_at"], false),
            idx("idx_codes_expires", "auth_codes", &["expires_at"], false),
            idx("idx_grants_user", "grants", &["user_id"], false),
            idx("idx_grants_session", "grants", &["session_id"], false),
            idx("idx_grants_expires", "grants", &["expires_at"], false),
            idx("idx_refresh_grant", "refresh_tokens", &["grant_id"], false),
            idx("idx_refresh_expires", "refresh_tokens", &["expires_at"], false),
            idx("idx_revoked_expires", "revoked_tokens", &["expires_at"], false),
            idx("idx_keys_state", "signing_keys", &["state"], false),
        ];
        for i in indexes {
            m.create_index(i).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "revoked_tokens",
            "refresh_tokens",
            "grants",
            "auth_codes",
            "sessions",
            "identities",
            "users",
            "logins",
            "locks",
            "signing_keys",
            "connections",
            "clients",
            "tenant_domains",
            "tenants",
            "admin_keys",
        ] {
            m.drop_table(Table::drop().table(name).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
