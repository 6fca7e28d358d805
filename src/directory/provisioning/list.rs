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

impl Provisioning<'_> {
    /// `GET /Users`, `GET /Groups` and their `.search`.
    pub async fn list(&self, kind: ResourceKind, q: &ListQuery) -> Result<Value> {
        let attributes = parse_attr_list(q.attributes.as_deref())?;
        let excluded = parse_attr_list(q.excluded_attributes.as_deref())?;
        let mut sql = ListSql::new(kind, dialect(self.db), &self.tenant.id);
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
        let mut resources = Vec::new();
        let now = self.clock.now();
        let total = match kind {
            ResourceKind::User if wanted => {
                // Each user with its groups, in the page's own statement.
                sql.with_member_of();
                let (total, rows) =
                    scim_users::list::<UserWithGroups>(self.db, sql, &self.tenant.id, start, count, now).await?;
                for r in rows {
                    resources.push(project(self.user_resource(&r.user, &r.groups), &attributes, &excluded));
                }
                total
            }
            ResourceKind::User => {
                let (total, rows) =
                    scim_users::list::<user::Model>(self.db, sql, &self.tenant.id, start, count, now).await?;
                for u in rows {
                    resources.push(project(self.user_resource(&u, &[]), &attributes, &excluded));
                }
                total
            }
            ResourceKind::Group => {
                let (total, rows) = scim_groups::list(self.db, sql, &self.tenant.id, start, count, now).await?;
                let members = if wanted && !rows.is_empty() {
                    scim_groups::members_of_groups(self.db, &rows.iter().map(|g| g.id.clone()).collect::<Vec<_>>())
                        .await?
                } else {
                    HashMap::new()
                };
                for g in rows {
                    let m = wanted.then(|| members.get(&g.id).map(Vec::as_slice).unwrap_or(&[]));
                    resources.push(project(self.group_resource(&g, m), &attributes, &excluded));
                }
                total
            }
        };
        Ok(list_response(total, start, resources))
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
