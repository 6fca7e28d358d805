//! Lists and searches (RFC 7644 §3.4.2, §3.4.3): filtered, sorted and paged by the database.
use super::{Provisioning, ProvisioningError, Result};
use crate::store::entities::user;
use crate::store::scim_list::dialect;
use crate::store::scim_sql::ListSql;
use crate::store::scim_user_view::UserWithGroups;
use crate::store::{scim_groups, scim_users};
use fedgate_scim::resource::{mentions, parse_attr_list, project};
use fedgate_scim::urn::LIST_RESPONSE;
use fedgate_scim::{filter, AttrPath, ResourceKind, MAX_RESULTS};
use serde_json::{json, Value};
use std::collections::HashMap;

/// List / search parameters (query string of a GET, or the SearchRequest body of a POST).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

/// A list request parsed and checked: its SQL (filtered and sorted), its page, and what the
/// response shows.
pub struct ListPlan {
    pub sql: ListSql,
    pub view: ListView,
}

/// A list's page and projection.
pub struct ListView {
    start: i64,
    pub count: i64,
    attributes: Vec<AttrPath>,
    excluded: Vec<AttrPath>,
    /// The membership attribute is shown (and so loaded).
    wanted: bool,
}

impl ListPlan {
    /// `q` applied to `sql` (a list of `kind`): the errors are the request's (a bad filter
    /// before a bad `sortBy`).
    fn new(kind: ResourceKind, q: &ListQuery, mut sql: ListSql) -> Result<Self> {
        let attributes = parse_attr_list(q.attributes.as_deref())?;
        let excluded = parse_attr_list(q.excluded_attributes.as_deref())?;
        if let Some(f) = q.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            let parsed = filter::parse(f)?;
            sql.filter(&parsed).map_err(ProvisioningError::UnsupportedFilter)?;
        }
        let start = q.start_index.unwrap_or(1).max(1);
        let count = q.count.unwrap_or(100).clamp(0, MAX_RESULTS);
        if let Some(sb) = q.sort_by.as_deref().filter(|s| !s.trim().is_empty()) {
            let p = AttrPath::parse(sb).map_err(|e| ProvisioningError::InvalidSort(format!("sortBy: {e}")))?;
            let desc = q.sort_order.as_deref().is_some_and(|o| o.eq_ignore_ascii_case("descending"));
            sql.sort(&p, desc).map_err(ProvisioningError::InvalidSort)?;
        }
        // The membership attribute is loaded only when the response shows it.
        let relation = kind.relation();
        let wanted = !mentions(&excluded, relation) && (attributes.is_empty() || mentions(&attributes, relation));
        if kind == ResourceKind::User && wanted {
            // Each user with its groups, in the page's own statement.
            sql.with_member_of();
        }
        Ok(Self { sql, view: ListView { start, count, attributes, excluded, wanted } })
    }

    /// The plan of a users list whose whole answer can be read in the SCIM token's statement
    /// (`sql`: [`crate::store::scim_tokens::users_of_token`]): a key lookup's first page in id
    /// order, with groups (`userName eq "…"` and `externalId eq "…"`, which Okta and Entra ID send
    /// before each create). `None` for any other request, a bad one included: it takes
    /// [`Provisioning::list`]'s path, which reports its errors once the token is checked.
    pub fn token_lookup(q: &ListQuery, sql: ListSql) -> Option<Self> {
        let p = Self::new(ResourceKind::User, q, sql).ok()?;
        let v = &p.view;
        (p.sql.is_key_lookup() && p.sql.in_id_order() && v.start == 1 && v.count > 0 && v.wanted).then_some(p)
    }
}

impl Provisioning<'_> {
    /// `GET /Users`, `GET /Groups` and their `.search`.
    pub async fn list(&self, kind: ResourceKind, q: &ListQuery) -> Result<Value> {
        let ListPlan { sql, view } = ListPlan::new(kind, q, ListSql::new(kind, dialect(self.db), &self.tenant.id))?;
        let (start, count, now) = (view.start, view.count, self.clock.now());
        let (total, resources) = match kind {
            ResourceKind::User if view.wanted => {
                let (total, rows) =
                    scim_users::list::<UserWithGroups>(self.db, sql, &self.tenant.id, start, count, now).await?;
                (total, self.users_with_groups(&view, rows))
            }
            ResourceKind::User => {
                let (total, rows) =
                    scim_users::list::<user::Model>(self.db, sql, &self.tenant.id, start, count, now).await?;
                (
                    total,
                    rows.iter()
                        .map(|u| project(self.user_resource(u, &[]), &view.attributes, &view.excluded))
                        .collect(),
                )
            }
            ResourceKind::Group => {
                let (total, rows) = scim_groups::list(self.db, sql, &self.tenant.id, start, count, now).await?;
                let members = if view.wanted && !rows.is_empty() {
                    scim_groups::members_of_groups(self.db, &rows.iter().map(|g| g.id.clone()).collect::<Vec<_>>())
                        .await?
                } else {
                    HashMap::new()
                };
                let mut resources = Vec::new();
                for g in rows {
                    let m = view.wanted.then(|| members.get(&g.id).map(Vec::as_slice).unwrap_or(&[]));
                    resources.push(project(self.group_resource(&g, m), &view.attributes, &view.excluded));
                }
                (total, resources)
            }
        };
        Ok(list_response(total, start, resources))
    }

    /// The answer of a [`ListPlan::token_lookup`] (`q`) from the users read with the token. A
    /// page with fewer rows than asked for holds every match; a full one reads only the count
    /// (as [`scim_users::list`] does for a key lookup's first page).
    pub async fn looked_up(&self, q: &ListQuery, view: &ListView, rows: Vec<UserWithGroups>) -> Result<Value> {
        let total = if (rows.len() as i64) < view.count {
            rows.len() as i64
        } else {
            let kind = ResourceKind::User;
            let plan = ListPlan::new(kind, q, ListSql::new(kind, dialect(self.db), &self.tenant.id))?;
            scim_users::count(self.db, &plan.sql).await?
        };
        Ok(list_response(total, view.start, self.users_with_groups(view, rows)))
    }

    /// A page's users, with their groups, as projected resources.
    fn users_with_groups(&self, view: &ListView, rows: Vec<UserWithGroups>) -> Vec<Value> {
        rows.iter().map(|r| project(self.user_resource(&r.user, &r.groups), &view.attributes, &view.excluded)).collect()
    }

    /// `POST /.search` at the root: Users then Groups, paged together (within the first
    /// [`MAX_RESULTS`] results).
    pub async fn search_all(&self, q: &ListQuery) -> Result<Value> {
        let start = q.start_index.unwrap_or(1).max(1);
        let count = q.count.unwrap_or(100).clamp(0, MAX_RESULTS);
        if start - 1 + count > MAX_RESULTS {
            return Err(ProvisioningError::TooMany(
                "a search across resource types pages through at most 1000 results; search /Users or /Groups instead"
                    .into(),
            ));
        }
        let mut wide = q.clone();
        wide.start_index = Some(1);
        wide.count = Some((start - 1 + count).min(MAX_RESULTS));
        let mut total = 0;
        let mut all: Vec<Value> = Vec::new();
        for kind in ResourceKind::ALL {
            let l = self.list(kind, &wide).await?;
            total += l["totalResults"].as_i64().unwrap_or(0);
            if let Some(a) = l["Resources"].as_array() {
                all.extend(a.iter().cloned());
            }
        }
        let page: Vec<Value> = all.into_iter().skip((start - 1) as usize).take(count as usize).collect();
        Ok(list_response(total, start, page))
    }
}

fn list_response(total: i64, start: i64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}
