//! Machine-to-machine clients: per-client scopes, tenant binding, access token lifetime and
//! audience, the token endpoint authentication method with the client's keys (`private_key_jwt`:
//! inline JWKS or `jwks_uri`), browser origins allowed to call the token endpoint (CORS), and a
//! switch that disables a client. Every column is nullable: existing clients keep their meaning
//! (confidential: client secret; public: none) and an older binary ignores the columns.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [(&str, Kind); 9] = [
    ("scopes", Kind::Text),
    ("tenant_id", Kind::Str),
    ("access_token_ttl", Kind::Int),
    ("audience", Kind::Text),
    ("auth_method", Kind::Str),
    ("jwks", Kind::Text),
    ("jwks_uri", Kind::Text),
    ("web_origins", Kind::Text),
    ("disabled_at", Kind::Int),
];

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Str,
    Int,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, kind) in COLUMNS {
            let mut col = ColumnDef::new(Alias::new(name));
            match kind {
                Kind::Text => col.text(),
                Kind::Str => col.string(),
                Kind::Int => col.big_integer(),
            };
            col.null();
            m.alter_table(Table::alter().table(Alias::new("clients")).add_column(col).to_owned()).await?;
        }
        m.create_index(
            Index::create()
                .name("idx_clients_tenant")
                .table(Alias::new("clients"))
                .col(Alias::new("tenant_id"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_clients_tenant").table(Alias::new("clients")).to_owned()).await?;
        for (name, _) in COLUMNS.iter().rev() {
            m.alter_table(Table::alter().table(Alias::new("clients")).drop_column(Alias::new(*name)).to_owned())
                .await?;
        }
        Ok(())
    }
}
