//! Group membership at scale (issue 13), on SQLite and PostgreSQL: 1,000 members added and
//! removed in one PATCH (Okta's and Entra ID's shapes) give the right members, one event per
//! member in order and one webhook delivery per event; `excludedAttributes=members` omits them;
//! another tenant's user ids are refused and change nothing; a PATCH's member values are bounded.
use crate::both;
use crate::common::*;
use crate::events::Receiver;
use crate::scim::{Scim, GROUP};
use fedgate::store::entities::{delivery, event};
use futures_util::stream::{self, StreamExt};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};

fn member_ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["members"]
        .as_array()
        .map(|a| a.iter().map(|m| m["value"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn values(ids: &[String]) -> Value {
    Value::Array(ids.iter().map(|i| json!({"value": i})).collect())
}

/// The user ids of the group's membership events of `kind`, in commit (sequence) order.
async fn membership_events(app: &TestApp, kind: &str, gid: &str) -> Vec<String> {
    event::Entity::find()
        .filter(event::Column::EventType.eq(kind))
        .order_by_asc(event::Column::Seq)
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| serde_json::from_str::<Value>(&e.data).unwrap())
        .filter(|d| d["group_id"] == gid)
        .map(|d| d["user_id"].as_str().unwrap().to_string())
        .collect()
}

async fn thousand_members_in_one_patch(app: &TestApp) {
    let rx = Receiver::start().await;
    let (st, hook) = app
        .post(
            "/webhooks",
            json!({"url": format!("{}/hook", rx.url), "event_types": ["group.member_added", "group.member_removed"]}),
        )
        .await;
    assert_eq!(st, 201, "{hook}");
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let s = Scim::setup(app, "big", "big.test").await;
    let other = Scim::setup(app, "other", "other.test").await;
    let stranger = other.user("stranger@other.test", json!({})).await;
    let users: Vec<String> = stream::iter(0..1000)
        .map(|i| {
            let s = &s;
            async move { s.user(&format!("u{i:04}@big.test"), json!({})).await }
        })
        .buffered(8)
        .collect()
        .await;
    let (st, g) =
        s.post("/Groups", json!({"schemas": [GROUP], "displayName": "All", "members": [{"value": users[0]}]})).await;
    assert_eq!(st, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_string();

    // One `add` of 1,000 (one already a member): 999 new memberships, one event each, in order.
    let (st, p) =
        s.patch(&format!("/Groups/{gid}"), json!([{"op": "add", "path": "members", "value": values(&users)}])).await;
    assert_eq!(st, 200, "{p}");
    let mut all = users.clone();
    all.sort();
    assert_eq!(member_ids(&p), all);
    assert_eq!(member_ids(&s.get(&format!("/Groups/{gid}")).await.1), all);
    let added = membership_events(app, "group.member_added", &gid).await;
    assert_eq!(added, users, "one event per member, the creation's first, then in the PATCH's order");
    // excludedAttributes=members: no members, on a GET, a list, a filter and a PATCH.
    let (st, g) = s.get(&format!("/Groups/{gid}?excludedAttributes=members")).await;
    assert_eq!((st, g["displayName"].as_str()), (200, Some("All")));
    assert!(g.get("members").is_none(), "{g}");
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("filter", &format!("members[value eq \"{}\"]", users[500]))
        .append_pair("excludedAttributes", "members")
        .finish();
    let (st, l) = s.get(&format!("/Groups?{q}")).await;
    assert_eq!((st, l["totalResults"].as_i64()), (200, Some(1)), "{l}");
    assert_eq!(l["Resources"][0]["id"], gid.as_str());
    assert!(l["Resources"][0].get("members").is_none());
    let (st, p) = s
        .patch(
            &format!("/Groups/{gid}?excludedAttributes=members"),
            json!([{"op": "replace", "path": "displayName", "value": "Everyone"}]),
        )
        .await;
    assert_eq!((st, p["displayName"].as_str()), (200, Some("Everyone")));
    assert!(p.get("members").is_none(), "{p}");

    // Another tenant's user: refused (RFC 7644 invalidValue), nothing written.
    let mut with_stranger = vec![users[0].clone(), stranger.clone()];
    with_stranger.rotate_left(1);
    let (st, e) = s
        .patch(&format!("/Groups/{gid}"), json!([{"op": "add", "path": "members", "value": values(&with_stranger)}]))
        .await;
    assert_eq!(st, 400, "{e}");
    assert_eq!(e["scimType"], "invalidValue");
    assert_eq!(e["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
    assert_eq!(e["status"], "400");
    let (st, e) = s
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "remove", "path": "members", "value": [{"value": users[1]}]},
                   {"op": "add", "value": {"members": [{"value": stranger}]}}]),
        )
        .await;
    assert_eq!((st, e["scimType"].as_str()), (400, Some("invalidValue")), "{e}");
    assert_eq!(member_ids(&s.get(&format!("/Groups/{gid}")).await.1).len(), 1000, "a failed PATCH changes nothing");
    assert_eq!(membership_events(app, "group.member_removed", &gid).await.len(), 0);
    // The other tenant cannot see or change the group.
    assert_eq!(other.get(&format!("/Groups/{gid}")).await.0, 404);
    let (st, _) = other
        .patch(&format!("/Groups/{gid}"), json!([{"op": "remove", "path": "members", "value": [{"value": users[2]}]}]))
        .await;
    assert_eq!(st, 404);

    // Removal: Entra's value list (600 in one operation), then Okta's filters (400 operations).
    let (entra, okta) = users.split_at(600);
    let (st, p) =
        s.patch(&format!("/Groups/{gid}"), json!([{"op": "Remove", "path": "members", "value": values(entra)}])).await;
    assert_eq!(st, 200, "{p}");
    let mut rest = okta.to_vec();
    rest.sort();
    assert_eq!(member_ids(&p), rest);
    let ops: Vec<Value> =
        okta.iter().map(|id| json!({"op": "remove", "path": format!("members[value eq \"{id}\"]")})).collect();
    let (st, p) = s.patch(&format!("/Groups/{gid}"), Value::Array(ops)).await;
    assert_eq!(st, 200, "{p}");
    assert!(p.get("members").is_none(), "{p}");
    let mut removed = membership_events(app, "group.member_removed", &gid).await;
    removed.sort();
    assert_eq!(removed, all, "one event per member removed");
    // Removing ids that are not members (or not users of this tenant) is a no-op.
    let (st, p) = s
        .patch(&format!("/Groups/{gid}"), json!([{"op": "remove", "path": "members", "value": [{"value": stranger}]}]))
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(membership_events(app, "group.member_removed", &gid).await.len(), 1000);

    // `replace` of members (reads the whole membership) still works.
    let mut three = users[..3].to_vec();
    three.sort();
    let (st, p) = s
        .patch(&format!("/Groups/{gid}"), json!([{"op": "replace", "path": "members", "value": values(&three)}]))
        .await;
    assert_eq!((st, member_ids(&p)), (200, three.clone()));

    // Every membership event has its webhook delivery.
    let deliveries = delivery::Entity::find()
        .filter(delivery::Column::TargetId.eq(hook_id.as_str()))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1000 + 1000 + 3);
    assert!(deliveries.iter().all(|d| d.event_id.is_some() && d.payload.contains(&gid)));

    // The bound: at most 10,000 member values in one PATCH.
    let many: Vec<String> = (0..10_001).map(|i| format!("usr_{i}")).collect();
    let (st, e) =
        s.patch(&format!("/Groups/{gid}"), json!([{"op": "add", "path": "members", "value": values(&many)}])).await;
    assert_eq!((st, e["scimType"].as_str()), (400, Some("invalidValue")), "{e}");
    assert!(e["detail"].as_str().unwrap().contains("10000"), "{e}");
}

both!(thousand_members_in_one_patch);
