//! Events (transactional outbox), webhook endpoints and deliveries (also used for back-channel
//! logout), and the admin audit log.
use crate::schema_util::{idx, t};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let tables = vec![
            t("events")
                .col(big_pk_auto("seq"))
                .col(string_uniq("id"))
                // PostgreSQL: the writing transaction's id, so readers never skip an event whose
                // transaction commits after a later one (see events/mod.rs). SQLite: 0.
                .col(big_integer("tx_id"))
                .col(string_null("tenant_id"))
                .col(string("event_type"))
                .col(big_integer("occurred_at"))
                .col(text("data"))
                .to_owned(),
            t("webhook_endpoints")
                .col(string("id").primary_key())
                .col(text("url"))
                .col(text("secret_enc"))
                .col(text("event_types"))
                .col(string_null("tenant_id"))
                .col(boolean("enabled"))
                .col(string_null("disabled_reason"))
                .col(big_integer_null("failing_since"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .to_owned(),
            t("deliveries")
                .col(string("id").primary_key())
                // "webhook" or "backchannel_logout"
                .col(string("kind"))
                .col(string("target_id"))
                .col(string_null("event_id"))
                .col(big_integer("event_seq"))
                .col(string("ordering_key"))
                .col(text("payload"))
                .col(string("status"))
                .col(integer("attempts"))
                .col(big_integer("next_attempt_at"))
                .col(string_null("lease_owner"))
                .col(big_integer_null("lease_until"))
                .col(integer_null("last_status"))
                .col(text_null("last_error"))
                .col(integer_null("last_latency_ms"))
                .col(big_integer("created_at"))
                .col(big_integer_null("finished_at"))
                .to_owned(),
            t("delivery_attempts")
                .col(big_pk_auto("seq"))
                .col(string("delivery_id"))
                .col(string("target_id"))
                .col(big_integer("at"))
                .col(integer_null("status"))
                .col(integer("latency_ms"))
                .col(text_null("error"))
                .to_owned(),
            t("audit_log")
                .col(big_pk_auto("seq"))
                .col(big_integer("at"))
                .col(string("actor"))
                .col(string("action"))
                .col(string("target_type"))
                .col(string_null("target_id"))
                .col(string_null("tenant_id"))
                .col(string("ip"))
                .col(string("request_id"))
                .col(text("details"))
                .to_owned(),
        ];
        for table in tables {
            m.create_table(table).await?;
        }
        for i in [
            idx("idx_events_order", "events", &["tx_id", "seq"], false),
            idx("idx_events_tenant", "events", &["tenant_id", "seq"], false),
            idx("idx_events_time", "events", &["occurred_at"], false),
            idx("idx_deliveries_due", "deliveries", &["status", "next_attempt_at"], false),
            idx("idx_deliveries_queue", "deliveries", &["target_id", "ordering_key", "status", "event_seq"], false),
            idx("idx_attempts_delivery", "delivery_attempts", &["delivery_id"], false),
            idx("idx_attempts_target", "delivery_attempts", &["target_id", "seq"], false),
            idx("idx_audit_time", "audit_log", &["at"], false),
        ] {
            m.create_index(i).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in ["audit_log", "delivery_attempts", "deliveries", "webhook_endpoints", "events"] {
            m.drop_table(Table::drop().table(name).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
