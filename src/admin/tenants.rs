//! `/admin/v1/tenants`
use super::{page_of, Admin, Page, PageQuery};
use crate::error_code::ErrorCode;
use crate::events::audit::Actor;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::ids::TenantId;
use crate::store::conn::Conn;
use crate::store::entities::tenant;
use crate::store::tenants::{self as store, NewTenant, TenantChanges};
use crate::store::{audited, connections, is_unique_violation};
use crate::tenant::{self as t, TenantSettings, TenantView};
use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub name: String,
    /// Unique, URL-safe: a-z, 0-9 and '-'.
    pub slug: String,
    /// Email domains owned by this tenant (unique across tenants).
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub settings: Option<TenantSettings>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    pub name: Option<String>,
    pub slug: Option<String>,
    /// Replaces the whole domain list.
    pub domains: Option<Vec<String>>,
    pub settings: Option<TenantSettings>,
}

fn validate_domains(v: &[String]) -> Result<Vec<String>, ApiError> {
    if v.len() > 100 {
        return Err(ApiError::invalid("domains", ErrorCode::TooManyDomains, "at most 100 domains per tenant"));
    }
    let mut out: Vec<String> = Vec::new();
    for d in v {
        let d = t::validate_domain(d)?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

async fn insert_domains(tx: &impl Conn, tenant_id: &str, domains: &[String], now: i64) -> Result<(), ApiError> {
    for d in domains {
        match store::insert_domain(tx, tenant_id, d, now).await {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(ApiError::conflict(
                    ErrorCode::DomainTaken,
                    "domains",
                    format!("{d} already belongs to a tenant"),
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Settings that name other rows: `scim_link_connection` must be a connection of this tenant
/// (`tenant_id` None: a tenant being created, which has none yet) and only goes with
/// `scim_link_scope: connection`.
async fn validate_settings(db: &impl Conn, tenant_id: Option<&str>, s: &TenantSettings) -> Result<(), ApiError> {
    let Some(c) = &s.scim_link_connection else { return Ok(()) };
    let invalid =
        |m: String| ApiError::invalid("settings.scim_link_connection", ErrorCode::InvalidScimLinkConnection, m);
    if s.scim_link_scope != t::ScimLinkScope::Connection {
        return Err(invalid("scim_link_connection goes only with scim_link_scope \"connection\"".into()));
    }
    let found = match tenant_id {
        Some(tid) => connections::get_of_tenant(db, tid, c).await?.is_some(),
        None => false,
    };
    if found {
        Ok(())
    } else {
        Err(invalid(format!("{c:?} is not a connection of this tenant")))
    }
}

async fn load(state: &AppState, key: &str) -> Result<tenant::Model, ApiError> {
    t::find(&state.db, key).await?.ok_or_else(|| ApiError::not_found("tenant"))
}

/// Create a tenant.
#[utoipa::path(post, path = "/tenants", operation_id = "createTenant", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = TenantView), (status = 400, description = "Invalid input"), (status = 409, description = "Slug or domain taken")))]
#[post("/tenants")]
pub async fn create(
    a: Admin,
    state: web::Data<AppState>,
    body: web::Json<CreateTenant>,
) -> Result<HttpResponse, ApiError> {
    let (row, domains) = create_tenant(&state, &a.actor(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(t::view(&row, domains)))
}

/// Creates a tenant (validated, audited as `actor`): the admin API and the console both write
/// through this.
pub async fn create_tenant(
    state: &AppState,
    actor: &Actor<'_>,
    body: CreateTenant,
) -> Result<(tenant::Model, Vec<String>), ApiError> {
    let name = t::validate_name("name", &body.name)?;
    let slug = t::validate_slug(&body.slug)?;
    let domains = validate_domains(&body.domains)?;
    let settings = body.settings.unwrap_or_default();
    validate_settings(&state.db, None, &settings).await?;
    let now_ms = state.clock.now_ms();
    let now = now_ms / 1000;
    let id = TenantId::new(now_ms, &*state.rng);
    let tx = audited::begin(&state.db).await?;
    let new = NewTenant {
        id: id.to_string(),
        slug: slug.clone(),
        name,
        settings: serde_json::to_string(&settings).unwrap_or_else(|_| "{}".into()),
        now,
    };
    let row = match store::insert(&*tx, new).await {
        Ok(r) => r,
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::conflict(ErrorCode::SlugTaken, "slug", format!("slug {slug:?} is taken")))
        }
        Err(e) => return Err(e.into()),
    };
    insert_domains(&*tx, row.id.as_str(), &domains, now).await?;
    let entry = actor.entry(
        now,
        "tenant.create",
        "tenant",
        Some(&row.id),
        Some(&row.id),
        serde_json::json!({"slug": row.slug, "domains": domains}),
    );
    tx.commit(&*state.rng, entry, None).await?;
    tracing::info!(tenant = %row.id, "tenant created");
    Ok((row, domains))
}

/// List tenants.
#[utoipa::path(get, path = "/tenants", operation_id = "listTenants", tag = "tenants", params(PageQuery), responses((status = 200, body = Page<TenantView>)))]
#[get("/tenants")]
pub async fn list(_a: Admin, state: web::Data<AppState>, q: web::Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    let rows = store::page(&state.db, q.request()?).await?;
    let ids: Vec<String> = rows.rows.iter().map(|r| r.id.clone()).collect();
    let domains = store::domains_of_many(&state.db, &ids).await?;
    let page = page_of(rows, |r| {
        let ds = domains.iter().filter(|d| d.tenant_id == r.id).map(|d| d.domain.clone()).collect();
        t::view(&r, ds)
    });
    Ok(HttpResponse::Ok().json(page))
}

/// Get a tenant by id or slug.
#[utoipa::path(get, path = "/tenants/{tenant}", operation_id = "getTenant", tag = "tenants", params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = TenantView), (status = 404, description = "Not found")))]
#[get("/tenants/{tenant}")]
pub async fn get(_a: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let row = load(&state, &path).await?;
    let domains = t::domains_of(&state.db, &row.id).await?;
    Ok(HttpResponse::Ok().json(t::view(&row, domains)))
}

/// Update a tenant.
#[utoipa::path(patch, path = "/tenants/{tenant}", operation_id = "updateTenant", tag = "tenants", request_body = UpdateTenant,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = TenantView), (status = 404, description = "Not found"), (status = 409, description = "Slug or domain taken")))]
#[patch("/tenants/{tenant}")]
pub async fn update(
    a: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<UpdateTenant>,
) -> Result<HttpResponse, ApiError> {
    let (row, ds) = update_tenant(&state, &a.actor(), &path, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(t::view(&row, ds)))
}

/// Updates a tenant (by id or slug; validated, audited as `actor`): the admin API and the
/// console both write through this.
pub async fn update_tenant(
    state: &AppState,
    actor: &Actor<'_>,
    key: &str,
    body: UpdateTenant,
) -> Result<(tenant::Model, Vec<String>), ApiError> {
    let name = body.name.as_deref().map(|n| t::validate_name("name", n)).transpose()?;
    let slug = body.slug.as_deref().map(t::validate_slug).transpose()?;
    let domains = body.domains.as_deref().map(validate_domains).transpose()?;
    let now = state.clock.now();
    let tx = audited::begin(&state.db).await?;
    let row = t::find(&*tx, key).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let mut changes = TenantChanges { name, slug: slug.clone(), settings: None };
    if let Some(s) = body.settings {
        validate_settings(&*tx, Some(&row.id), &s).await?;
        changes.settings = Some(serde_json::to_string(&s).unwrap_or_else(|_| "{}".into()));
    }
    let row = match store::update(&*tx, row, changes, now).await {
        Ok(r) => r,
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::conflict(
                ErrorCode::SlugTaken,
                "slug",
                format!("slug {:?} is taken", slug.unwrap_or_default()),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(ds) = &domains {
        store::delete_domains(&*tx, &row.id).await?;
        insert_domains(&*tx, &row.id, ds, now).await?;
    }
    let ds = t::domains_of(&*tx, &row.id).await?;
    let entry = actor.entry(
        now,
        "tenant.update",
        "tenant",
        Some(&row.id),
        Some(&row.id),
        serde_json::json!({"slug": row.slug, "domains": ds}),
    );
    tx.commit(&*state.rng, entry, None).await?;
    Ok((row, ds))
}

/// Delete a tenant with everything it owns: domains, connections, users, sessions and tokens.
#[utoipa::path(delete, path = "/tenants/{tenant}", operation_id = "deleteTenant", tag = "tenants", params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found")))]
#[delete("/tenants/{tenant}")]
pub async fn remove(a: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let tx = audited::begin(&state.db).await?;
    let row = t::find(&*tx, &path).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let tid = row.id.clone();
    store::delete_cascade(&*tx, &tid).await?;
    let entry = a.actor().entry(
        state.clock.now(),
        "tenant.delete",
        "tenant",
        Some(&tid),
        Some(&tid),
        serde_json::json!({"slug": row.slug}),
    );
    tx.commit(&*state.rng, entry, None).await?;
    tracing::info!(tenant = %tid, "tenant deleted");
    Ok(HttpResponse::NoContent().finish())
}
