//! `/admin/v1/admin-keys`: the admin API's own keys — list (never the key), create (the key is in
//! that answer only), revoke. Only a full, global key manages keys; a read-only or tenant-scoped
//! key is refused by the extractor (`admin::auth::allowed`). Every change is audited.
use super::Admin;
use crate::error_code::ErrorCode;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::admin_keys as store;
use crate::store::audited;
use crate::store::entities::admin_key;
use crate::util::rfc3339;
use actix_web::http::StatusCode;
use actix_web::{delete, get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAdminKey {
    /// A label, e.g. "terraform" or "support read-only".
    pub name: String,
    /// `full` (default) or `read_only` (GET and HEAD only).
    #[serde(default)]
    pub scope: Option<String>,
    /// Confine the key to this tenant (id or slug): it reaches only `/tenants/{tenant}/...`.
    #[serde(default)]
    pub tenant: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminKeyView {
    pub id: String,
    pub name: String,
    /// `full` or `read_only`.
    pub scope: String,
    /// Set for a tenant-scoped key.
    pub tenant_id: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// The key: present only in the response that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

fn view(k: admin_key::Model, key: Option<String>) -> AdminKeyView {
    AdminKeyView {
        id: k.id,
        name: k.name,
        scope: k.scope,
        tenant_id: k.tenant_id,
        created_at: rfc3339(k.created_at),
        last_used_at: k.last_used_at.map(rfc3339),
        revoked_at: k.revoked_at.map(rfc3339),
        key,
    }
}

fn only_global_full(a: &Admin) -> Result<(), ApiError> {
    if a.read_only || a.tenant_id.is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::AdminKeyOutOfScope,
            "only a full, global admin key manages admin keys",
        ));
    }
    Ok(())
}

/// List the admin keys (never their values), newest first.
#[utoipa::path(get, path = "/admin-keys", operation_id = "listAdminKeys", tag = "admin-keys",
    responses((status = 200, body = Vec<AdminKeyView>), (status = 403, description = "Not a full, global key")))]
#[get("/admin-keys")]
pub async fn list(a: Admin, st: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    only_global_full(&a)?;
    let rows = store::list(&st.db).await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({"data": rows.into_iter().map(|k| view(k, None)).collect::<Vec<_>>()})))
}

/// Create an admin key. The key is in this response only.
#[utoipa::path(post, path = "/admin-keys", operation_id = "createAdminKey", tag = "admin-keys", request_body = CreateAdminKey,
    responses((status = 201, body = AdminKeyView), (status = 400, description = "Invalid scope or tenant"), (status = 403, description = "Not a full, global key")))]
#[post("/admin-keys")]
pub async fn create(
    a: Admin,
    st: web::Data<AppState>,
    body: web::Json<CreateAdminKey>,
) -> Result<HttpResponse, ApiError> {
    only_global_full(&a)?;
    let name = crate::tenant::validate_name("name", &body.name)?;
    let read_only = match body.scope.as_deref() {
        None | Some(crate::admin::auth::SCOPE_FULL) => false,
        Some(crate::admin::auth::SCOPE_READ_ONLY) => true,
        Some(_) => {
            return Err(ApiError::invalid("scope", ErrorCode::InvalidBody, "scope is `full` or `read_only`"));
        }
    };
    let tenant = match &body.tenant {
        Some(t) => Some(
            crate::tenant::find(&st.db, t)
                .await?
                .ok_or_else(|| ApiError::invalid("tenant", ErrorCode::NotFound, "no such tenant"))?,
        ),
        None => None,
    };
    let now_ms = st.clock.now_ms();
    let tx = audited::begin(&st.db).await?;
    let (id, key) = crate::admin::auth::create_scoped_key(
        &*tx,
        &name,
        read_only,
        tenant.as_ref().map(|t| t.id.as_str()),
        now_ms,
        &*st.rng,
    )
    .await?;
    let row = store::get(&*tx, &id).await?.ok_or_else(ApiError::internal)?;
    let entry = a.actor().entry(
        now_ms / 1000,
        "admin_key.create",
        "admin_key",
        Some(&id),
        row.tenant_id.as_deref(),
        serde_json::json!({"name": row.name, "scope": row.scope}),
    );
    tx.commit(&*st.rng, entry, None).await?;
    Ok(HttpResponse::Created().json(view(row, Some(key))))
}

/// Revoke an admin key: it stops working at once, on every instance.
#[utoipa::path(delete, path = "/admin-keys/{id}", operation_id = "revokeAdminKey", tag = "admin-keys",
    params(("id" = String, Path, description = "Key id")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "Not found")))]
#[delete("/admin-keys/{id}")]
pub async fn revoke(a: Admin, st: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    only_global_full(&a)?;
    let now = st.clock.now();
    let tx = audited::begin(&st.db).await?;
    if store::revoke(&*tx, &path, now).await? {
        let entry = a.actor().entry(now, "admin_key.revoke", "admin_key", Some(&path), None, serde_json::json!({}));
        tx.commit(&*st.rng, entry, None).await?;
    } else if store::get(&*tx, &path).await?.is_none() {
        return Err(ApiError::not_found("admin key"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The command line's side (`fedgate admin-key ...`): the same rows and audit entries as the API,
/// with the actor `cli`.
pub mod cli {
    use crate::store::{admin_keys as store, audited, Db};

    const ACTOR: crate::events::audit::Actor<'static> = crate::events::audit::Actor { name: "cli", ip: "local" };

    #[derive(Debug, thiserror::Error)]
    pub enum CliError {
        #[error("database: {0}")]
        Db(#[from] crate::store::conn::DbErr),
        #[error("no tenant {0:?}")]
        NoTenant(String),
        #[error("no live admin key {0:?}")]
        NoKey(String),
    }

    /// Creates a key; returns (id, plaintext key).
    pub async fn create(
        db: &Db,
        name: &str,
        read_only: bool,
        tenant: Option<&str>,
        now_ms: i64,
        rng: &dyn crate::clock::Rng,
    ) -> Result<(String, String), CliError> {
        let tenant_id = match tenant {
            Some(t) => Some(crate::tenant::find(db, t).await?.ok_or_else(|| CliError::NoTenant(t.into()))?.id),
            None => None,
        };
        let tx = audited::begin(db).await?;
        let (id, key) =
            crate::admin::auth::create_scoped_key(&*tx, name, read_only, tenant_id.as_deref(), now_ms, rng).await?;
        let entry = ACTOR.entry(
            now_ms / 1000,
            "admin_key.create",
            "admin_key",
            Some(&id),
            tenant_id.as_deref(),
            serde_json::json!({"name": name, "scope": if read_only { "read_only" } else { "full" }}),
        );
        tx.commit(rng, entry, None).await?;
        Ok((id, key))
    }

    /// Every key as lines of text: id, name, scope, tenant, created, last used, revoked.
    pub async fn list(db: &Db) -> Result<Vec<String>, CliError> {
        let t = |v: Option<i64>| v.map(crate::util::rfc3339).unwrap_or_else(|| "-".into());
        Ok(store::list(db)
            .await?
            .into_iter()
            .map(|k| {
                format!(
                    "{}\t{}\t{}\t{}\tcreated {}\tlast used {}\trevoked {}",
                    k.id,
                    k.name,
                    k.scope,
                    k.tenant_id.as_deref().unwrap_or("all tenants"),
                    crate::util::rfc3339(k.created_at),
                    t(k.last_used_at),
                    t(k.revoked_at)
                )
            })
            .collect())
    }

    pub async fn revoke(db: &Db, id: &str, now: i64, rng: &dyn crate::clock::Rng) -> Result<(), CliError> {
        let tx = audited::begin(db).await?;
        if !store::revoke(&*tx, id, now).await? {
            return Err(CliError::NoKey(id.into()));
        }
        let entry = ACTOR.entry(now, "admin_key.revoke", "admin_key", Some(id), None, serde_json::json!({}));
        tx.commit(rng, entry, None).await?;
        Ok(())
    }
}
