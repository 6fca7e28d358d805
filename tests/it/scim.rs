//! SCIM 2.0 provisioning end to end over HTTP, on SQLite and PostgreSQL: CRUD, filters, paging,
//! sorting, attributes, ETags, errors, tenant isolation, Okta and Entra ID sequences, the
//! lifecycle (deprovisioning revokes tokens, SSO links to provisioned users and carries their
//! groups) and concurrent writers of two tenants.
use crate::both;
use crate::common::*;
use reqwest::Method;
use serde_json::{json, Value};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A SCIM client for one tenant.
pub struct Scim<'a> {
    pub app: &'a TestApp,
    pub slug: String,
    pub token: String,
}

impl<'a> Scim<'a> {
    /// Creates a tenant with a dev connection and a SCIM token.
    pub async fn setup(app: &'a TestApp, slug: &str, domain: &str) -> Scim<'a> {
        app.tenant(slug, domain, &["upstream-group"]).await;
        Self::token_for(app, slug).await
    }

    pub async fn token_for(app: &'a TestApp, slug: &str) -> Scim<'a> {
        let (s, t) = app.post(&format!("/tenants/{slug}/scim-tokens"), json!({"name": "provisioning"})).await;
        assert_eq!(s, 201, "{t}");
        Scim { app, slug: slug.into(), token: t["token"].as_str().unwrap().to_string() }
    }

    pub async fn req(&self, m: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.req_h(m, path, body, &[]).await.0
    }

    pub async fn req_h(
        &self,
        m: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> ((u16, Value), reqwest::header::HeaderMap) {
        let url = self.app.url(&format!("/scim/v2/{}{path}", self.slug));
        let mut r = self.app.http.request(m, url).bearer_auth(&self.token);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.header("content-type", "application/scim+json").body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let s = resp.status().as_u16();
        let h = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        ((s, serde_json::from_str(&text).unwrap_or(Value::Null)), h)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.req(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, b: Value) -> (u16, Value) {
        self.req(Method::POST, path, Some(b)).await
    }
    pub async fn put(&self, path: &str, b: Value) -> (u16, Value) {
        self.req(Method::PUT, path, Some(b)).await
    }
    pub async fn patch(&self, path: &str, ops: Value) -> (u16, Value) {
        self.req(Method::PATCH, path, Some(json!({"schemas": [PATCH], "Operations": ops}))).await
    }
    pub async fn delete(&self, path: &str) -> u16 {
        self.req(Method::DELETE, path, None).await.0
    }

    /// Creates a user; returns its id.
    pub async fn user(&self, user_name: &str, extra: Value) -> String {
        let mut b = json!({"schemas": [USER], "userName": user_name, "name": {"givenName": "G", "familyName": "F"},
                           "emails": [{"value": user_name, "type": "work", "primary": true}], "active": true});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                b[k] = v;
            }
        }
        let (s, u) = self.post("/Users", b).await;
        assert_eq!(s, 201, "{u}");
        u["id"].as_str().unwrap().to_string()
    }

    /// `GET /Users?filter=...` (url-encoded); returns the ListResponse.
    pub async fn filter(&self, kind: &str, f: &str) -> (u16, Value) {
        let q = url::form_urlencoded::Serializer::new(String::new()).append_pair("filter", f).finish();
        self.get(&format!("/{kind}?{q}")).await
    }

    /// userNames matching a user filter, sorted.
    pub async fn names(&self, f: &str) -> Vec<String> {
        let (s, l) = self.filter("Users", f).await;
        assert_eq!(s, 200, "{f}: {l}");
        let mut v: Vec<String> =
            l["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap().to_string()).collect();
        v.sort();
        v
    }
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    let mut out: Vec<String> = v[key]
        .as_array()
        .map(|a| a.iter().map(|m| m["value"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

async fn user_crud_meta_and_etags(app: &TestApp) {
    let s = Scim::setup(app, "acme", "acme.test").await;
    let (st, u) = s
        .post(
            "/Users",
            json!({"schemas": [USER, ENT, "urn:example:custom:2.0:User"], "userName": "Bjensen@Acme.test", "externalId": "ext-1",
                   "name": {"givenName": "Barbara", "familyName": "Jensen"}, "displayName": "Babs",
                   "emails": [{"value": "bjensen@acme.test", "type": "work", "primary": "True"}],
                   "password": "secret!", ENT: {"department": "R&D", "manager": {"value": "m-1"}},
                   "urn:example:custom:2.0:User": {"shoeSize": 42}}),
        )
        .await;
    assert_eq!(st, 201, "{u}");
    let id = u["id"].as_str().unwrap();
    assert!(id.starts_with("usr_"));
    assert_eq!(u["meta"]["resourceType"], "User");
    assert_eq!(u["meta"]["version"], "W/\"1\"");
    assert!(u["meta"]["location"].as_str().unwrap().ends_with(&format!("/scim/v2/acme/Users/{id}")));
    assert!(u["meta"]["created"].as_str().unwrap().ends_with('Z'));
    assert!(u.get("password").is_none(), "password is write-only");
    assert_eq!(u["emails"][0]["primary"], true);
    assert_eq!(u[ENT]["department"], "R&D");
    assert_eq!(u["urn:example:custom:2.0:User"]["shoeSize"], 42, "unknown extension kept");
    assert_ne!(u["active"], false, "active unless said otherwise");
    let ((st, got), h) = s.req_h(Method::GET, &format!("/Users/{id}"), None, &[]).await;
    assert_eq!(st, 200);
    assert_eq!(h["etag"], "W/\"1\"");
    assert_eq!(h["content-type"], "application/scim+json");
    assert_eq!(got["userName"], "Bjensen@Acme.test");
    // If-None-Match -> 304.
    let ((st, _), _) = s.req_h(Method::GET, &format!("/Users/{id}"), None, &[("if-none-match", "W/\"1\"")]).await;
    assert_eq!(st, 304);
    // PUT replaces; If-Match with a stale ETag -> 412 and nothing changes.
    let mut body = got.clone();
    body["displayName"] = "Barbara J".into();
    let ((st, e), _) =
        s.req_h(Method::PUT, &format!("/Users/{id}"), Some(body.clone()), &[("if-match", "W/\"7\"")]).await;
    assert_eq!(st, 412, "{e}");
    let ((st, put), h) = s.req_h(Method::PUT, &format!("/Users/{id}"), Some(body), &[("if-match", "W/\"1\"")]).await;
    assert_eq!(st, 200, "{put}");
    assert_eq!(put["displayName"], "Barbara J");
    assert_eq!(h["etag"], "W/\"2\"");
    // PATCH.
    let (st, p) = s
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "name.givenName", "value": "Babs"},
                   {"op": "add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555"}]),
        )
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["name"]["givenName"], "Babs");
    assert_eq!(p["phoneNumbers"][0]["value"], "+1 555");
    assert_eq!(p["meta"]["version"], "W/\"3\"");
    // A failing PATCH changes nothing.
    let (st, e) = s
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "displayName", "value": "changed"},
                   {"op": "replace", "path": "emails[type eq \"work\"", "value": "x"}]),
        )
        .await;
    assert_eq!((st, e["scimType"].as_str()), (400, Some("invalidPath")), "{e}");
    let (_, now) = s.get(&format!("/Users/{id}")).await;
    assert_eq!(now["displayName"], "Barbara J");
    assert_eq!(now["meta"]["version"], "W/\"3\"");
    // attributes / excludedAttributes.
    let (_, a) = s.get(&format!("/Users/{id}?attributes=userName,name.familyName")).await;
    assert_eq!(a["userName"], "Bjensen@Acme.test");
    assert_eq!(a["name"], json!({"familyName": "Jensen"}));
    assert!(a.get("emails").is_none() && a["id"] == id);
    let (_, a) = s.get(&format!("/Users/{id}?excludedAttributes=emails,{ENT}:department")).await;
    assert!(a.get("emails").is_none());
    assert!(a[ENT].get("department").is_none());
    assert_eq!(a["userName"], "Bjensen@Acme.test");
    // DELETE (soft by default) -> 404 afterwards.
    assert_eq!(s.delete(&format!("/Users/{id}")).await, 204);
    assert_eq!(s.get(&format!("/Users/{id}")).await.0, 404);
    assert_eq!(s.delete(&format!("/Users/{id}")).await, 404);
    // Restored by a POST with the same externalId.
    let (st, r) =
        s.post("/Users", json!({"schemas": [USER], "userName": "bjensen@acme.test", "externalId": "ext-1"})).await;
    assert_eq!(st, 201, "{r}");
    assert_eq!(r["id"], id, "restored, same id");
    assert_ne!(r["active"], false, "restored users are active");
}

async fn filters_paging_sorting(app: &TestApp) {
    let s = Scim::setup(app, "acme", "acme.test").await;
    for (i, (n, title, active)) in [
        ("alice@acme.test", "Engineer", true),
        ("bob@acme.test", "Manager", true),
        ("Carol@Acme.test", "Engineer", false),
        ("dave@other.test", "Designer", true),
        ("eve@acme.test", "Engineer", true),
    ]
    .iter()
    .enumerate()
    {
        s.user(
            n,
            json!({"title": title, "active": active, "externalId": format!("x{i}"),
                   "emails": [{"value": n.to_lowercase(), "type": "work", "primary": true}, {"value": format!("home{i}@mail.test"), "type": "home"}],
                   ENT: {"employeeNumber": format!("{}", 100 + i), "department": if i % 2 == 0 { "R&D" } else { "Sales" }}}),
        )
        .await;
    }
    assert_eq!(s.names("userName eq \"ALICE@acme.test\"").await, ["alice@acme.test"], "userName is case-insensitive");
    assert_eq!(s.names("userName eq \"carol@acme.test\"").await, ["Carol@Acme.test"]);
    assert_eq!(s.names("externalId eq \"X1\"").await, Vec::<String>::new(), "externalId is case-exact");
    assert_eq!(s.names("externalId eq \"x1\"").await, ["bob@acme.test"]);
    assert_eq!(s.names("userName sw \"a\"").await, ["alice@acme.test"]);
    assert_eq!(s.names("userName ew \"OTHER.test\"").await, ["dave@other.test"]);
    assert_eq!(s.names("userName co \"o\" and active eq false").await, ["Carol@Acme.test"]);
    assert_eq!(s.names("title eq \"engineer\" and not (active eq false)").await, ["alice@acme.test", "eve@acme.test"]);
    assert_eq!(
        s.names("title eq \"Designer\" or userName eq \"bob@acme.test\"").await,
        ["bob@acme.test", "dave@other.test"]
    );
    assert_eq!(s.names("emails[type eq \"work\" and value co \"acme\"]").await.len(), 4);
    assert_eq!(s.names("emails[type eq \"home\" and value eq \"HOME2@mail.test\"]").await, ["Carol@Acme.test"]);
    assert_eq!(s.names("emails.value eq \"home3@mail.test\"").await, ["dave@other.test"]);
    assert_eq!(s.names("emails co \"home4\"").await, ["eve@acme.test"]);
    assert_eq!(s.names(&format!("{ENT}:department eq \"sales\"")).await, ["bob@acme.test", "dave@other.test"]);
    assert_eq!(s.names(&format!("{ENT}:employeeNumber gt \"102\"")).await, ["dave@other.test", "eve@acme.test"]);
    assert_eq!(s.names("title pr and not (title eq \"Engineer\")").await, ["bob@acme.test", "dave@other.test"]);
    assert_eq!(s.names("nickName pr").await, Vec::<String>::new());
    assert_eq!(s.names("title ne \"Engineer\"").await, ["bob@acme.test", "dave@other.test"]);
    assert_eq!(s.names("meta.created gt \"2000-01-01T00:00:00Z\"").await.len(), 5);
    assert_eq!(s.names("meta.lastModified lt \"2000-01-01T00:00:00Z\"").await.len(), 0);
    assert_eq!(s.names("USERNAME Eq \"eve@acme.test\"").await, ["eve@acme.test"], "keywords and names any case");
    // Paging and sorting.
    let (_, p) = s.get("/Users?sortBy=userName&sortOrder=descending&startIndex=2&count=2").await;
    assert_eq!(p["totalResults"], 5);
    assert_eq!(p["startIndex"], 2);
    assert_eq!(p["itemsPerPage"], 2);
    let names: Vec<&str> = p["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap()).collect();
    assert_eq!(names, ["dave@other.test", "Carol@Acme.test"]);
    let (_, p) = s.get("/Users?sortBy=emails&count=1").await;
    assert_eq!(p["Resources"][0]["userName"], "alice@acme.test");
    let (_, p) = s.get("/Users?count=0").await;
    assert_eq!((p["totalResults"].as_i64(), p["Resources"].as_array().map(Vec::len)), (Some(5), Some(0)));
    // POST /.search
    let (st, p) = s
        .post(
            "/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "title eq \"Engineer\"", "attributes": ["userName"], "sortBy": "userName", "count": 10}),
        )
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["totalResults"], 3);
    assert!(p["Resources"][0].get("title").is_none());
    let (st, p) = s.post("/.search", json!({"filter": "userName sw \"b\""})).await;
    assert_eq!((st, p["totalResults"].as_i64()), (200, Some(1)), "{p}");
}

async fn errors_use_the_scim_schema(app: &TestApp) {
    let s = Scim::setup(app, "acme", "acme.test").await;
    let id = s.user("dup@acme.test", json!({})).await;
    let check = |(st, e): (u16, Value), status: u16, t: Option<&str>| {
        assert_eq!(st, status, "{e}");
        assert_eq!(e["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]), "{e}");
        assert_eq!(e["status"], status.to_string());
        assert_eq!(e["scimType"].as_str(), t, "{e}");
    };
    check(s.post("/Users", json!({"schemas": [USER], "userName": "DUP@acme.test"})).await, 409, Some("uniqueness"));
    check(s.filter("Users", "userName eq").await, 400, Some("invalidFilter"));
    check(s.filter("Users", "userName xx \"a\"").await, 400, Some("invalidFilter"));
    let deep = format!("{}userName pr{}", "(".repeat(40), ")".repeat(40));
    check(s.filter("Users", &deep).await, 400, Some("invalidFilter"));
    let long = format!("userName eq \"{}\"", "a".repeat(5000));
    check(s.filter("Users", &long).await, 400, Some("invalidFilter"));
    check(s.filter("Users", "active gt true").await, 400, Some("invalidFilter"));
    check(s.post("/Users", json!({"schemas": [USER]})).await, 400, Some("invalidValue"));
    check(
        s.post("/Users", json!({"schemas": [USER], "userName": "x", "active": "maybe"})).await,
        400,
        Some("invalidValue"),
    );
    check(s.req(Method::POST, "/Users", None).await, 400, Some("invalidSyntax"));
    check(
        s.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "emails[", "value": 1}])).await,
        400,
        Some("invalidPath"),
    );
    check(s.patch(&format!("/Users/{id}"), json!([{"op": "remove"}])).await, 400, Some("noTarget"));
    check(
        s.patch(&format!("/Users/{id}"), json!([{"op": "add", "path": "id", "value": "other"}])).await,
        400,
        Some("mutability"),
    );
    check(s.patch(&format!("/Users/{id}"), json!([{"op": "add", "path": "title"}])).await, 400, Some("invalidValue"));
    let many: Vec<Value> = (0..1001).map(|_| json!({"op": "add", "path": "title", "value": "x"})).collect();
    check(s.patch(&format!("/Users/{id}"), json!(many)).await, 400, Some("invalidValue"));
    check(s.get("/Users?sortBy=emails[").await, 400, Some("invalidPath"));
    check(s.post("/.search", json!({"startIndex": 990, "count": 100})).await, 400, Some("tooMany"));
    check(s.get("/Users/usr_nope").await, 404, None);
    check(s.get("/Nope").await, 404, None);
    let (st, _) =
        s.post("/Groups", json!({"schemas": [GROUP], "displayName": "g", "members": [{"value": "usr_nope"}]})).await;
    assert_eq!(st, 400);
    // No token, a wrong token, a revoked token: 401 with the SCIM error schema.
    let r = app.http.get(app.url("/scim/v2/acme/Users")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let bad = Scim { app, slug: "acme".into(), token: "fgscim_nope".into() };
    check(bad.get("/Users").await, 401, None);
    let (_, list) = app.get("/tenants/acme/scim-tokens").await;
    let tok = &list["data"][0];
    assert!(tok.get("token").is_none(), "tokens are shown once");
    assert!(tok["last_used_at"].is_string());
    let (st, _) =
        app.admin(Method::DELETE, &format!("/tenants/acme/scim-tokens/{}", tok["id"].as_str().unwrap()), None).await;
    assert_eq!(st, 204);
    check(s.get("/Users").await, 401, None);
}

async fn discovery_endpoints(app: &TestApp) {
    let s = Scim::setup(app, "acme", "acme.test").await;
    let (st, spc) = s.get("/ServiceProviderConfig").await;
    assert_eq!(st, 200);
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["filter"]["supported"], true);
    assert_eq!(spc["filter"]["maxResults"], 1000);
    assert_eq!(spc["etag"]["supported"], true);
    assert_eq!(spc["sort"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], false);
    let (_, rt) = s.get("/ResourceTypes").await;
    assert_eq!(rt["totalResults"], 2);
    assert_eq!(s.get("/ResourceTypes/User").await.1["endpoint"], "/Users");
    let (_, sc) = s.get("/Schemas").await;
    assert_eq!(sc["totalResults"], 3);
    assert_eq!(s.get(&format!("/Schemas/{USER}")).await.0, 200);
}

async fn groups_members_and_excluded_attributes(app: &TestApp) {
    let s = Scim::setup(app, "acme", "acme.test").await;
    let a = s.user("a@acme.test", json!({})).await;
    let b = s.user("b@acme.test", json!({})).await;
    let c = s.user("c@acme.test", json!({})).await;
    let (st, g) = s
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "Engineering", "externalId": "g-ext",
        "members": [{"value": a}, {"value": b}]}),
        )
        .await;
    assert_eq!(st, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_string();
    assert_eq!(ids(&g, "members"), {
        let mut v = vec![a.clone(), b.clone()];
        v.sort();
        v
    });
    assert_eq!(g["members"][0]["type"], "User");
    // The user shows the group (read-only).
    let (_, ua) = s.get(&format!("/Users/{a}")).await;
    assert_eq!(ua["groups"][0]["value"], gid);
    assert_eq!(ua["groups"][0]["display"], "Engineering");
    // members excluded on request.
    let (_, gx) = s.get(&format!("/Groups/{gid}?excludedAttributes=members")).await;
    assert!(gx.get("members").is_none());
    assert_eq!(gx["displayName"], "Engineering");
    let (_, l) = s.get("/Groups?excludedAttributes=members").await;
    assert!(l["Resources"][0].get("members").is_none());
    // Filters on groups.
    let (_, l) = s.filter("Groups", "displayName eq \"engineering\"").await;
    assert_eq!(l["totalResults"], 1);
    let (_, l) = s.filter("Groups", &format!("members.value eq \"{b}\"")).await;
    assert_eq!(l["totalResults"], 1);
    let (_, l) = s.filter("Groups", &format!("members[value eq \"{c}\"]")).await;
    assert_eq!(l["totalResults"], 0);
    assert_eq!(s.names(&format!("groups.value eq \"{gid}\"")).await, ["a@acme.test", "b@acme.test"]);
    // Lists show each user's own groups (read in the page's statement): in a filter, in a page
    // in id order, sorted, and on a page continued from a paging hint.
    let (_, g2) =
        s.post("/Groups", json!({"schemas": [GROUP], "displayName": "Sales", "members": [{"value": a}]})).await;
    let g2 = g2["id"].as_str().unwrap().to_string();
    let groups_of = |l: &Value| -> Vec<(String, Vec<String>)> {
        l["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut g: Vec<String> = r["groups"]
                    .as_array()
                    .map(|a| a.iter().map(|g| format!("{}={}", g["value"].as_str().unwrap(), g["display"])).collect())
                    .unwrap_or_default();
                g.sort();
                (r["userName"].as_str().unwrap().to_string(), g)
            })
            .collect()
    };
    let mut a_groups = vec![format!("{gid}=\"Engineering\""), format!("{g2}=\"Sales\"")];
    a_groups.sort();
    let want = vec![
        ("a@acme.test".to_string(), a_groups.clone()),
        ("b@acme.test".to_string(), vec![format!("{gid}=\"Engineering\"")]),
        ("c@acme.test".to_string(), vec![]),
    ];
    let (_, l) = s.filter("Users", "userName eq \"a@acme.test\"").await;
    assert_eq!(groups_of(&l), want[..1]);
    let (_, l) = s.get("/Users?sortBy=userName").await;
    assert_eq!(groups_of(&l), want);
    let (_, l) = s.get("/Users?count=2").await;
    let mut seen = groups_of(&l);
    let (_, l) = s.get("/Users?count=2&startIndex=3").await;
    seen.extend(groups_of(&l));
    seen.sort();
    assert_eq!(seen, want, "pages in id order, the second from a paging hint");
    // Not asked for: no groups (and none read).
    let (_, l) = s.get("/Users?sortBy=userName&attributes=userName").await;
    assert!(l["Resources"][0].get("groups").is_none(), "{l}");
    let (_, l) = s.get("/Users?sortBy=userName&excludedAttributes=groups").await;
    assert!(l["Resources"][0].get("groups").is_none(), "{l}");
    assert_eq!(s.delete(&format!("/Groups/{g2}")).await, 204);
    // PATCH add / remove (RFC form and Entra's value-list form), idempotent adds, rename.
    let (st, p) = s
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "add", "path": "members", "value": [{"value": c}, {"value": a}]}]),
        )
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(ids(&p, "members").len(), 3);
    let (_, p) = s
        .patch(&format!("/Groups/{gid}"), json!([{"op": "remove", "path": format!("members[value eq \"{a}\"]")}]))
        .await;
    assert_eq!(ids(&p, "members").len(), 2);
    let (_, p) =
        s.patch(&format!("/Groups/{gid}"), json!([{"op": "Remove", "path": "members", "value": [{"value": b}]}])).await;
    assert_eq!(ids(&p, "members"), vec![c.clone()]);
    let (_, p) = s.patch(&format!("/Groups/{gid}"), json!([{"op": "replace", "value": {"displayName": "Eng"}}])).await;
    assert_eq!(p["displayName"], "Eng");
    assert_eq!(s.get(&format!("/Users/{c}")).await.1["groups"][0]["display"], "Eng");
    // PUT with members replaces them.
    let (st, p) = s
        .put(&format!("/Groups/{gid}"), json!({"schemas": [GROUP], "displayName": "Eng", "members": [{"value": a}]}))
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(ids(&p, "members"), vec![a.clone()]);
    // Deleting a user removes its memberships; deleting the group removes it.
    assert_eq!(s.delete(&format!("/Users/{a}")).await, 204);
    assert!(s.get(&format!("/Groups/{gid}")).await.1.get("members").is_none());
    assert_eq!(s.delete(&format!("/Groups/{gid}")).await, 204);
    assert_eq!(s.get(&format!("/Groups/{gid}")).await.0, 404);
}

async fn login(app: &TestApp, cid: &str, slug: &str, email: &str) -> String {
    code_for(app, &browser(), cid, &[("organization", slug), ("login_hint", email)]).await
}

/// The error a login ends with (`None` when it succeeded).
async fn login_error(app: &TestApp, cid: &str, slug: &str, email: &str) -> Option<String> {
    let back =
        login_via(app, &browser(), &authorize_url(app, cid, &[("organization", slug), ("login_hint", email)])).await;
    query_of(&back).get("error").cloned()
}

async fn sso_links_to_provisioned_users_and_deprovisioning_revokes(app: &TestApp) {
    let s = Scim::setup(app, "acme", "acme.test").await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let sec = secret.as_deref().unwrap();
    let pat = s.user("Pat@acme.test", json!({"displayName": "Pat"})).await;
    let (_, g) =
        s.post("/Groups", json!({"schemas": [GROUP], "displayName": "Admins", "members": [{"value": pat}]})).await;
    let gid = g["id"].as_str().unwrap().to_string();
    // The first SSO login links to the provisioned user (userName = email, case-insensitive).
    let (st, tok) = exchange(app, &cid, secret.as_deref(), &login(app, &cid, "acme", "pat@acme.test").await).await;
    assert_eq!(st, 200, "{tok}");
    let claims = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!(claims["sub"], pat.as_str(), "linked to the SCIM user");
    assert_eq!(claims["groups"], json!(["upstream-group", "Admins"]));
    let at = tok["access_token"].as_str().unwrap().to_string();
    let rt = tok["refresh_token"].as_str().unwrap().to_string();
    let r = app.http.get(app.url("/oauth2/userinfo")).bearer_auth(&at).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["groups"], json!(["upstream-group", "Admins"]));
    // SCIM group changes show up at the next refresh.
    s.patch(&format!("/Groups/{gid}"), json!([{"op": "replace", "value": {"displayName": "Owners"}}])).await;
    let (st, t2) = refresh(app, &cid, secret.as_deref(), &rt).await;
    assert_eq!(st, 200, "{t2}");
    let c2 = verify_jwt(app, t2["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!(c2["groups"], json!(["upstream-group", "Owners"]));
    let at = t2["access_token"].as_str().unwrap().to_string();
    let rt = t2["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(introspect(app, &cid, sec, &at).await["active"], true);
    // Deactivation (Entra's string boolean): tokens die at once, the next login is refused.
    let (st, u) =
        s.patch(&format!("/Users/{pat}"), json!([{"op": "Replace", "path": "active", "value": "False"}])).await;
    assert_eq!((st, u["active"].as_bool()), (200, Some(false)), "{u}");
    assert_eq!(introspect(app, &cid, sec, &at).await["active"], false);
    let (st, e) = refresh(app, &cid, secret.as_deref(), &rt).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")), "{e}");
    let r = app.http.get(app.url("/oauth2/userinfo")).bearer_auth(&at).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(login_error(app, &cid, "acme", "pat@acme.test").await.as_deref(), Some("access_denied"));
    // Reactivation: logins work again (old tokens stay dead).
    let (st, _) = s.patch(&format!("/Users/{pat}"), json!([{"op": "replace", "value": {"active": true}}])).await;
    assert_eq!(st, 200);
    let (st, tok) = exchange(app, &cid, secret.as_deref(), &login(app, &cid, "acme", "pat@acme.test").await).await;
    assert_eq!(st, 200, "{tok}");
    assert_eq!(verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await["sub"], pat.as_str());
    assert_eq!(introspect(app, &cid, sec, &at).await["active"], false);
    let at = tok["access_token"].as_str().unwrap().to_string();
    // Deletion (soft) also revokes and refuses logins; a POST with the same externalId restores.
    assert_eq!(s.delete(&format!("/Users/{pat}")).await, 204);
    assert_eq!(introspect(app, &cid, sec, &at).await["active"], false);
    assert_eq!(login_error(app, &cid, "acme", "pat@acme.test").await.as_deref(), Some("access_denied"));
    // A person SCIM never provisioned is still created just in time.
    let (st, _) = exchange(app, &cid, secret.as_deref(), &login(app, &cid, "acme", "jit@acme.test").await).await;
    assert_eq!(st, 200);
}

async fn link_rules_and_hard_delete(app: &TestApp) {
    let s = Scim::setup(app, "acme", "acme.test").await;
    let (st, _) = app
        .admin(
            Method::PATCH,
            "/tenants/acme",
            Some(json!({"settings": {"scim_link": "external_id", "scim_delete": "hard"}})),
        )
        .await;
    assert_eq!(st, 200);
    let (cid, secret) = app.client("confidential", "ES256").await;
    // externalId rule: userName does not matter, the upstream subject does.
    let by_ext = s.user("someone-else", json!({"externalId": "dev|kim@acme.test"})).await;
    let by_name = s.user("lee@acme.test", json!({})).await;
    let (_, t) = exchange(app, &cid, secret.as_deref(), &login(app, &cid, "acme", "kim@acme.test").await).await;
    assert_eq!(verify_jwt(app, t["id_token"].as_str().unwrap(), &cid).await["sub"], by_ext.as_str());
    let (_, t) = exchange(app, &cid, secret.as_deref(), &login(app, &cid, "acme", "lee@acme.test").await).await;
    assert_ne!(verify_jwt(app, t["id_token"].as_str().unwrap(), &cid).await["sub"], by_name.as_str());
    // Hard delete: gone for good, tokens dead, a POST with the same externalId creates a new user.
    let at = {
        let (_, t) = exchange(app, &cid, secret.as_deref(), &login(app, &cid, "acme", "kim@acme.test").await).await;
        t["access_token"].as_str().unwrap().to_string()
    };
    assert_eq!(s.delete(&format!("/Users/{by_ext}")).await, 204);
    assert_eq!(introspect(app, &cid, secret.as_deref().unwrap(), &at).await["active"], false);
    let again = s.user("someone-else", json!({"externalId": "dev|kim@acme.test"})).await;
    assert_ne!(again, by_ext);
}

async fn tenant_isolation(app: &TestApp) {
    let a = Scim::setup(app, "alpha", "alpha.test").await;
    let b = Scim::setup(app, "beta", "beta.test").await;
    let ua = a.user("same@x.test", json!({"externalId": "e1"})).await;
    let ub = b.user("same@x.test", json!({"externalId": "e1"})).await;
    let ub2 = b.user("shared@beta.test", json!({})).await;
    // The same userName in two tenants is fine; each sees only its own.
    assert_eq!(a.names("userName eq \"same@x.test\"").await.len(), 1);
    let (_, l) = a.filter("Users", &format!("id eq \"{ub}\" or id eq \"{ub2}\"")).await;
    assert_eq!(l["totalResults"], 0);
    let (_, l) = a.get("/Users").await;
    assert_eq!(l["totalResults"], 1);
    assert_eq!(l["Resources"][0]["id"], ua.as_str());
    // A's token on B's URL: 401, whatever the path.
    let cross = Scim { app, slug: "beta".into(), token: a.token.clone() };
    for p in ["/Users", &format!("/Users/{ub}"), "/Groups", "/ServiceProviderConfig"] {
        assert_eq!(cross.get(p).await.0, 401, "{p}");
    }
    assert_eq!(cross.post("/Users", json!({"userName": "evil"})).await.0, 401);
    // Key lookups read the users in the token's own statement: still a 401, and B's users are
    // never in A's answers.
    for f in [r#"userName eq "same@x.test""#, r#"externalId eq "e1""#, r#"userName eq "shared@beta.test""#] {
        assert_eq!(cross.filter("Users", f).await.0, 401, "{f}");
        let (st, l) = a.filter("Users", f).await;
        assert_eq!(st, 200, "{f}: {l}");
        let ids: Vec<&str> = l["Resources"].as_array().unwrap().iter().filter_map(|r| r["id"].as_str()).collect();
        assert!(ids.iter().all(|i| *i == ua), "{f}: {l}");
    }
    assert_eq!(a.filter("Users", &format!("id eq \"{ub}\"")).await.1["totalResults"], 0);
    // B's ids through A's URL: 404 for every method; nothing changes in B.
    assert_eq!(a.get(&format!("/Users/{ub}")).await.0, 404);
    assert_eq!(a.put(&format!("/Users/{ub}"), json!({"userName": "pwned"})).await.0, 404);
    assert_eq!(
        a.patch(&format!("/Users/{ub}"), json!([{"op": "replace", "path": "active", "value": false}])).await.0,
        404
    );
    assert_eq!(a.delete(&format!("/Users/{ub}")).await, 404);
    let (_, still) = b.get(&format!("/Users/{ub}")).await;
    assert_eq!((still["userName"].as_str(), still["active"].as_bool()), (Some("same@x.test"), Some(true)));
    // Groups: B's user ids never become members of A's groups, in any form.
    let (st, _) = a.post("/Groups", json!({"schemas": [GROUP], "displayName": "g", "members": [{"value": ub}]})).await;
    assert_eq!(st, 400);
    let (_, g) = a.post("/Groups", json!({"schemas": [GROUP], "displayName": "g", "members": [{"value": ua}]})).await;
    let gid = g["id"].as_str().unwrap().to_string();
    let (st, e) =
        a.patch(&format!("/Groups/{gid}"), json!([{"op": "add", "path": "members", "value": [{"value": ub2}]}])).await;
    assert_eq!((st, e["scimType"].as_str()), (400, Some("invalidValue")));
    let (st, _) =
        a.put(&format!("/Groups/{gid}"), json!({"displayName": "g", "members": [{"value": ua}, {"value": ub}]})).await;
    assert_eq!(st, 400);
    let (_, g) = a.get(&format!("/Groups/{gid}")).await;
    assert_eq!(ids(&g, "members"), vec![ua.clone()]);
    assert_eq!(b.get(&format!("/Groups/{gid}")).await.0, 404);
    assert_eq!(b.names(&format!("groups.value eq \"{gid}\"")).await.len(), 0);
    // SSO never links across tenants: a login at beta for an address provisioned only in alpha
    // as a userName creates beta's own user.
    let ax = a.user("shared@beta.test", json!({})).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let (_, t) = exchange(app, &cid, secret.as_deref(), &login(app, &cid, "beta", "shared@beta.test").await).await;
    let sub = verify_jwt(app, t["id_token"].as_str().unwrap(), &cid).await["sub"].clone();
    assert_eq!(sub, ub2.as_str());
    assert_ne!(sub, ax.as_str());
    // The request log is per tenant, has no bodies, and records errors.
    let (st, log) = app.get("/tenants/alpha/scim-requests?limit=200").await;
    assert_eq!(st, 200, "{log}");
    let rows = log["data"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["path"].as_str().unwrap().starts_with("/scim/v2/alpha")), "{log}");
    assert!(rows.iter().any(|r| r["status"] == 404 && r["method"] == "PUT"));
    assert!(rows.iter().any(|r| r["error_code"] == "invalidValue"));
    assert!(!log.to_string().contains("pwned"), "bodies are never logged");
    assert!(rows.iter().all(|r| r["duration_ms"].is_number()));
}

/// What Okta sends (Okta's SCIM 2.0 guide), asserting state after each step.
async fn okta_provisioning_sequence(app: &TestApp) {
    let s = Scim::setup(app, "okta", "okta-customer.test").await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let email = "ada.lovelace@okta-customer.test";
    // Existence check.
    let (st, l) = s.get(&format!("/Users?filter=userName%20eq%20%22{email}%22&startIndex=1&count=100")).await;
    assert_eq!((st, l["totalResults"].as_i64()), (200, Some(0)));
    // Create.
    let (st, u) = s
        .post(
            "/Users",
            json!({
                "schemas": [USER], "userName": email, "name": {"givenName": "Ada", "familyName": "Lovelace"},
                "emails": [{"primary": true, "value": email, "type": "work"}], "displayName": "Ada Lovelace",
                "locale": "en-US", "externalId": "00u1abcd", "groups": [], "password": "1mz050nq", "active": true
            }),
        )
        .await;
    assert_eq!(st, 201, "{u}");
    let id = u["id"].as_str().unwrap().to_string();
    let (_, l) = s.get(&format!("/Users?filter=userName%20eq%20%22{email}%22&startIndex=1&count=100")).await;
    assert_eq!(l["Resources"][0]["id"], id.as_str());
    // Profile update by PUT (Okta sends the whole user, with id and meta).
    let mut full = s.get(&format!("/Users/{id}")).await.1;
    full["name"]["familyName"] = "King".into();
    full["title"] = "Countess".into();
    let (st, p) = s.put(&format!("/Users/{id}"), full).await;
    assert_eq!(st, 200, "{p}");
    assert_eq!((p["name"]["familyName"].as_str(), p["title"].as_str()), (Some("King"), Some("Countess")));
    // Push group: existence check, create, add members, rename, remove members.
    let (_, l) = s.get("/Groups?filter=displayName%20eq%20%22Engineering%22&startIndex=1&count=100").await;
    assert_eq!(l["totalResults"], 0);
    let (st, g) = s.post("/Groups", json!({"schemas": [GROUP], "displayName": "Engineering", "members": []})).await;
    assert_eq!(st, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "add", "path": "members", "value": [{"value": id, "display": email}]}]),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(ids(&s.get(&format!("/Groups/{gid}")).await.1, "members"), vec![id.clone()]);
    let (st, g2) = s
        .patch(&format!("/Groups/{gid}"), json!([{"op": "replace", "value": {"id": gid, "displayName": "Eng"}}]))
        .await;
    assert_eq!((st, g2["displayName"].as_str()), (200, Some("Eng")));
    // The SSO login carries the pushed group.
    let (_, t) = exchange(app, &cid, secret.as_deref(), &login(app, &cid, "okta", email).await).await;
    let c = verify_jwt(app, t["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!((c["sub"].as_str(), c["groups"].clone()), (Some(id.as_str()), json!(["upstream-group", "Eng"])));
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let (st, _) = s
        .patch(&format!("/Groups/{gid}"), json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]))
        .await;
    assert_eq!(st, 200);
    assert!(s.get(&format!("/Groups/{gid}")).await.1.get("members").is_none());
    // Okta's membership in a PUT body.
    let (st, g3) = s
        .put(
            &format!("/Groups/{gid}"),
            json!({"schemas": [GROUP], "id": gid, "displayName": "Eng", "members": [{"value": id}]}),
        )
        .await;
    assert_eq!((st, ids(&g3, "members")), (200, vec![id.clone()]));
    // Periodic no-op add is idempotent.
    let (st, g4) =
        s.patch(&format!("/Groups/{gid}"), json!([{"op": "add", "path": "members", "value": [{"value": id}]}])).await;
    assert_eq!((st, ids(&g4, "members").len()), (200, 1));
    // Deactivate (Okta: path-less replace).
    let (st, u) = s.patch(&format!("/Users/{id}"), json!([{"op": "replace", "value": {"active": false}}])).await;
    assert_eq!((st, u["active"].as_bool()), (200, Some(false)));
    let (_, l) = s.filter("Users", "active eq false").await;
    assert_eq!(l["totalResults"], 1);
    assert_eq!(refresh(app, &cid, secret.as_deref(), &rt).await.0, 400);
    assert_eq!(login_error(app, &cid, "okta", email).await.as_deref(), Some("access_denied"));
    // Reactivate.
    let (st, u) = s.patch(&format!("/Users/{id}"), json!([{"op": "replace", "value": {"active": true}}])).await;
    assert_eq!((st, u["active"].as_bool()), (200, Some(true)));
    assert_eq!(login_error(app, &cid, "okta", email).await, None);
    // Group delete.
    assert_eq!(s.delete(&format!("/Groups/{gid}")).await, 204);
    assert!(s.get(&format!("/Users/{id}")).await.1.get("groups").is_none());
    assert_eq!(s.delete(&format!("/Users/{id}")).await, 204);
    assert_eq!(s.get(&format!("/Users/{id}")).await.0, 404);
}

/// What Microsoft Entra ID sends (with `?aadOptscim062020` behaviour), asserting state after each step.
async fn entra_provisioning_sequence(app: &TestApp) {
    let s = Scim::setup(app, "entra", "contoso.test").await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let upn = "Test_User_dfeef4c5@contoso.test";
    // Entra keeps the `?aadOptscim062020` flag of the tenant URL on its requests.
    let (st, l) = s.get(&format!("/Users?aadOptscim062020&filter=userName%20eq%20%22{upn}%22")).await;
    assert_eq!((st, l["totalResults"].as_i64()), (200, Some(0)), "{l}");
    let (st, u) = s.post("/Users", json!({
        "schemas": [USER, ENT], "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", "userName": upn, "active": true,
        "emails": [{"primary": true, "type": "work", "value": "Test_User_11bb6eea@contoso.test"}],
        "meta": {"resourceType": "User"}, "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [], ENT: {"department": "Eng"}
    })).await;
    assert_eq!(st, 201, "{u}");
    let id = u["id"].as_str().unwrap().to_string();
    // Lookups by the matching attribute, any case, and by externalId.
    let (_, l) = s.filter("Users", &format!("userName eq \"{}\"", upn.to_lowercase())).await;
    assert_eq!(l["Resources"][0]["id"], id.as_str());
    let (_, l) = s.filter("Users", "externalId eq \"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef\"").await;
    assert_eq!(l["totalResults"], 1);
    // Update: PATCH with typed paths, filtered paths and enterprise URNs (manager as a string).
    let (st, p) = s
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "Replace", "path": "displayName", "value": "Updated Name"},
                {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 206 555 0100"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updated@contoso.test"},
                {"op": "Add", "path": format!("{ENT}:manager"), "value": "mgr-42"},
                {"op": "Replace", "value": {"name.givenName": "Given", format!("{ENT}:department"): "Research"}}
            ]),
        )
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["displayName"], "Updated Name");
    assert_eq!(p["phoneNumbers"][0]["value"], "+1 206 555 0100");
    assert_eq!(p["emails"][0]["value"], "updated@contoso.test");
    assert_eq!(p[ENT]["manager"]["value"], "mgr-42");
    assert_eq!(p[ENT]["department"], "Research");
    assert_eq!(p["name"]["givenName"], "Given");
    // Groups: create, look up without members, add and remove (Entra's value-list form).
    let (st, g) = s
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "Group1", "meta": {"resourceType": "Group"}, "members": []}),
        )
        .await;
    assert_eq!(st, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_string();
    let (_, l) = s.get("/Groups?excludedAttributes=members&filter=displayName%20eq%20%22Group1%22").await;
    assert_eq!(l["Resources"][0]["id"], gid.as_str());
    let (st, _) =
        s.patch(&format!("/Groups/{gid}"), json!([{"op": "Add", "path": "members", "value": [{"value": id}]}])).await;
    assert_eq!(st, 200);
    let (_, l) = s
        .get(&format!(
            "/Groups?filter=id%20eq%20%22{gid}%22%20and%20members.value%20eq%20%22{id}%22&excludedAttributes=members"
        ))
        .await;
    assert_eq!(l["totalResults"], 1);
    let (_, t) = exchange(app, &cid, secret.as_deref(), &login(app, &cid, "entra", "updated@contoso.test").await).await;
    let c = verify_jwt(app, t["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!(
        (c["sub"].as_str(), c["groups"].clone()),
        (Some(id.as_str()), json!(["upstream-group", "Group1"])),
        "linked by email"
    );
    let at = t["access_token"].as_str().unwrap().to_string();
    let (st, _) = s
        .patch(&format!("/Groups/{gid}"), json!([{"op": "Remove", "path": "members", "value": [{"value": id}]}]))
        .await;
    assert_eq!(st, 200);
    let (_, l) = s.get(&format!("/Groups?filter=id%20eq%20%22{gid}%22%20and%20members.value%20eq%20%22{id}%22")).await;
    assert_eq!(l["totalResults"], 0);
    // Disable with a string boolean.
    let (st, u) =
        s.patch(&format!("/Users/{id}"), json!([{"op": "Replace", "path": "active", "value": "False"}])).await;
    assert_eq!((st, u["active"].as_bool()), (200, Some(false)));
    assert_eq!(introspect(app, &cid, secret.as_deref().unwrap(), &at).await["active"], false);
    let (st, u) = s.patch(&format!("/Users/{id}"), json!([{"op": "Replace", "path": "active", "value": "True"}])).await;
    assert_eq!((st, u["active"].as_bool()), (200, Some(true)));
    // Delete.
    assert_eq!(s.delete(&format!("/Users/{id}")).await, 204);
    assert_eq!(s.get(&format!("/Users/{id}")).await.0, 404);
    let (_, l) = s.filter("Users", &format!("userName eq \"{upn}\"")).await;
    assert_eq!(l["totalResults"], 0);
    assert_eq!(s.delete(&format!("/Groups/{gid}")).await, 204);
}

/// Two tenants provisioning at once, 16 requests in flight each: every user lands in its own
/// tenant and only there.
async fn concurrent_tenants(app: &TestApp) {
    use futures_util::stream::{self, StreamExt};
    const PER_TENANT: usize = 1500;
    let a = Scim::setup(app, "ca", "ca.test").await;
    let b = Scim::setup(app, "cb", "cb.test").await;
    let started = std::time::Instant::now();
    let run = |s: &Scim<'_>| {
        let slug = s.slug.clone();
        let token = s.token.clone();
        let url = app.url(&format!("/scim/v2/{slug}/Users"));
        let http = app.http.clone();
        async move {
            stream::iter(0..PER_TENANT)
                .map(|i| {
                    let (http, url, token, slug) = (http.clone(), url.clone(), token.clone(), slug.clone());
                    async move {
                        let r = http
                            .post(&url)
                            .bearer_auth(&token)
                            .json(&json!({"schemas": [USER], "userName": format!("u{i}@{slug}.test"), "externalId": format!("{slug}-{i}")}))
                            .send()
                            .await
                            .unwrap();
                        let st = r.status().as_u16();
                        let body: Value = r.json().await.unwrap();
                        assert_eq!(st, 201, "{body}");
                        body["id"].as_str().unwrap().to_string()
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<String>>()
                .await
        }
    };
    let (ia, ib) = tokio::join!(run(&a), run(&b));
    eprintln!("{} users on {:?} in {:?}", 2 * PER_TENANT, app.backend, started.elapsed());
    for (s, own, other) in [(&a, &ia, &ib), (&b, &ib, &ia)] {
        let mut seen = std::collections::HashSet::new();
        let mut start = 1;
        loop {
            let (_, l) = s.get(&format!("/Users?startIndex={start}&count=1000&attributes=userName")).await;
            assert_eq!(l["totalResults"].as_u64(), Some(PER_TENANT as u64));
            let rs = l["Resources"].as_array().unwrap();
            if rs.is_empty() {
                break;
            }
            for r in rs {
                assert!(r["userName"].as_str().unwrap().ends_with(&format!("@{}.test", s.slug)), "{r}");
                seen.insert(r["id"].as_str().unwrap().to_string());
            }
            start += rs.len();
        }
        assert_eq!(seen.len(), PER_TENANT);
        assert!(own.iter().all(|i| seen.contains(i)));
        assert!(other.iter().all(|i| !seen.contains(i)));
    }
}

/// Provisioning turned on after people already signed in: the SCIM create adopts the user the
/// SSO login created (same tenant, verified email) instead of making a second one.
async fn provisioning_adopts_users_created_by_sso(app: &TestApp) {
    let s = Scim::setup(app, "acme", "acme.test").await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let (_, tok) = exchange(app, &cid, secret.as_deref(), &login(app, &cid, "acme", "early@acme.test").await).await;
    let first = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await["sub"].as_str().unwrap().to_string();
    let adopted = s.user("Early@acme.test", json!({})).await;
    assert_eq!(adopted, first, "the SCIM create adopted the SSO user");
    let (st, list) = s.req(Method::GET, "/Users?filter=userName%20eq%20%22early%40acme.test%22", None).await;
    assert_eq!((st, list["totalResults"].as_i64()), (200, Some(1)));
    let (_, g) = s
        .post("/Groups", json!({"schemas": [GROUP], "displayName": "Early birds", "members": [{"value": adopted}]}))
        .await;
    assert!(g["id"].is_string(), "{g}");
    let (_, tok) = exchange(app, &cid, secret.as_deref(), &login(app, &cid, "acme", "early@acme.test").await).await;
    let c = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!(c["sub"], first.as_str(), "still one person");
    assert_eq!(c["groups"], json!(["upstream-group", "Early birds"]));
    // With an externalId (as Okta and Entra ID send), restoring and adopting are looked up in one
    // statement: an SSO user is adopted...
    let cid_ref = &cid;
    let sub_of = move |tok: Value| async move {
        verify_jwt(app, tok["id_token"].as_str().unwrap(), cid_ref).await["sub"].as_str().unwrap().to_string()
    };
    let (_, tok) = exchange(app, &cid, secret.as_deref(), &login(app, &cid, "acme", "late@acme.test").await).await;
    let late = sub_of(tok).await;
    assert_eq!(s.user("late@acme.test", json!({"externalId": "okta-late"})).await, late, "adopted");
    // ...and a soft-deleted SCIM user with that externalId is restored in preference to an SSO
    // user with the email, who stays apart.
    let gone = s.user("gone@acme.test", json!({"externalId": "okta-gone"})).await;
    assert_eq!(s.delete(&format!("/Users/{gone}")).await, 204);
    let (_, tok) = exchange(app, &cid, secret.as_deref(), &login(app, &cid, "acme", "again@acme.test").await).await;
    let again = sub_of(tok).await;
    assert_eq!(s.user("again@acme.test", json!({"externalId": "okta-gone"})).await, gone, "restored, not adopted");
    assert_ne!(gone, again);
    // No match at all: a new user.
    let fresh = s.user("fresh@acme.test", json!({"externalId": "okta-fresh"})).await;
    assert!(![first.as_str(), late.as_str(), gone.as_str(), again.as_str()].contains(&fresh.as_str()));
    // Another tenant's SCIM create never adopts this user.
    let other = Scim::setup(app, "globex", "globex.test").await;
    let g2 = other.user("early@acme.test", json!({})).await;
    assert_ne!(g2, first);
}

/// The wire format, byte for byte: the discovery documents as sent (raw text, base URL replaced)
/// and a User, a Group and a ListResponse (ids and times redacted), with their headers.
async fn wire_format_snapshots(app: &TestApp) {
    let s = Scim::setup(app, "acme", "acme.test").await;
    let base = app.url("/scim/v2/acme");
    for (name, path) in [
        ("scim_service_provider_config", "/ServiceProviderConfig"),
        ("scim_resource_types", "/ResourceTypes"),
        ("scim_resource_type_user", "/ResourceTypes/User"),
        ("scim_schemas", "/Schemas"),
        ("scim_schema_enterprise_user", "/Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
    ] {
        let r = s.app.http.get(format!("{base}{path}")).bearer_auth(&s.token).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "application/scim+json");
        let text = r.text().await.unwrap().replace(&base, "https://issuer.example/scim/v2/acme");
        insta::assert_snapshot!(name, text);
    }
    let redact = |v: &Value| {
        let text = v.to_string().replace(&base, "https://issuer.example/scim/v2/acme");
        let mut v: Value = serde_json::from_str(&text).unwrap();
        fn walk(v: &mut Value) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m.iter_mut() {
                        match (k.as_str(), x.as_str()) {
                            ("created" | "lastModified", Some(_)) => *x = "[time]".into(),
                            ("id" | "value" | "$ref" | "location", Some(s))
                                if s.contains("usr_") || s.contains("grp_") =>
                            {
                                let (head, tail) = s.split_at(s.find("usr_").or_else(|| s.find("grp_")).unwrap());
                                *x = format!("{head}{}[id]", &tail[..4]).into();
                            }
                            _ => walk(x),
                        }
                    }
                }
                Value::Array(a) => a.iter_mut().for_each(walk),
                _ => {}
            }
        }
        walk(&mut v);
        v
    };
    let ((st, u), h) = s
        .req_h(
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER, ENT], "userName": "Bjensen@Acme.test", "externalId": "ext-1",
                "name": {"givenName": "Barbara", "familyName": "Jensen", "FORMATTED": "Barbara Jensen"},
                "displayName": "Babs", "active": "true", "password": "secret!", "groups": [{"value": "x"}],
                "emails": [{"value": "bjensen@acme.test", "type": "work", "primary": "True"}, {"value": "b@x.test"}],
                ENT: {"department": "R&D", "manager": {"value": "m-1"}}})),
            &[],
        )
        .await;
    assert_eq!(st, 201, "{u}");
    assert_eq!(h["etag"], "W/\"1\"");
    let uid = u["id"].as_str().unwrap().to_string();
    assert!(h["location"].to_str().unwrap().ends_with(&format!("/Users/{uid}")));
    insta::assert_json_snapshot!("scim_user_created", redact(&u));
    let (st, g) =
        s.post("/Groups", json!({"schemas": [GROUP], "displayName": "Eng", "members": [{"value": uid}]})).await;
    assert_eq!(st, 201, "{g}");
    insta::assert_json_snapshot!("scim_group_created", redact(&g));
    let (_, u) = s.get(&format!("/Users/{uid}")).await;
    insta::assert_json_snapshot!("scim_user_with_groups", redact(&u));
    let (_, l) = s.get("/Groups?count=5").await;
    insta::assert_json_snapshot!("scim_group_list", redact(&l));
}

/// The token, its revocation and the tenant are read in one query on every request and never
/// cached: a token revoked through one instance stops at once on another, the other tokens of
/// the tenant keep working, and the tenant in the URL may be its slug (any case) or its id.
async fn token_checked_on_every_request(app: &TestApp) {
    let s = Scim::setup(app, "acme", "acme.test").await;
    let second = Scim::token_for(app, "acme").await;
    // GET /Users/{id} reads the user in the token's own statement: the token is still what
    // decides (no token, a wrong one, or a user of the tenant asked through a token of none).
    let uid = s.user("pat@acme.test", json!({})).await;
    let user_path = format!("/Users/{uid}");
    assert_eq!(s.get(&user_path).await.0, 200);
    let wrong = Scim { app, slug: "acme".into(), token: format!("{}x", s.token) };
    assert_eq!(wrong.get(&user_path).await.0, 401);
    assert_eq!(wrong.filter("Users", r#"userName eq "pat@acme.test""#).await.0, 401);
    let r = app.http.get(app.url(&format!("/scim/v2/acme{user_path}"))).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let other = app.second_instance().await;
    let s_other = Scim { app: &other, slug: "acme".into(), token: s.token.clone() };
    // On SQLite the token is read on the request's own thread (store::inline), not through sqlx.
    let inline_before = fedgate::store::inline::inline_reads(&app.state.db);
    assert_eq!(inline_before.is_some(), app.backend == Backend::Sqlite);
    assert_eq!(s.get("/Users").await.0, 200);
    if let Some(before) = inline_before {
        assert!(fedgate::store::inline::inline_reads(&app.state.db).unwrap() > before, "the token read inline");
    }
    assert_eq!(s_other.get("/Users").await.0, 200, "the second instance serves the same token");
    let (_, t) = app.get("/tenants/acme").await;
    let tenant_id = t["id"].as_str().unwrap().to_string();
    for key in ["ACME", "Acme", tenant_id.as_str()] {
        let by = Scim { app, slug: key.into(), token: s.token.clone() };
        assert_eq!(by.get("/Users").await.0, 200, "{key}");
    }
    let (_, list) = app.get("/tenants/acme/scim-tokens").await;
    let first = list["data"].as_array().unwrap().iter().find(|k| k["last_used_at"].is_string()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Revoked through the first instance, refused at once by both.
    let (st, _) = app.admin(Method::DELETE, &format!("/tenants/acme/scim-tokens/{first}"), None).await;
    assert_eq!(st, 204);
    assert_eq!(s.get("/Users").await.0, 401);
    assert_eq!(s_other.get("/Users").await.0, 401);
    assert_eq!(s.get(&user_path).await.0, 401, "a revoked token reads no user");
    assert_eq!(s_other.get(&user_path).await.0, 401);
    // Nor finds one with a key lookup (read in the token's statement).
    let lookup = r#"userName eq "pat@acme.test""#;
    assert_eq!(s.filter("Users", lookup).await.0, 401);
    assert_eq!(s_other.filter("Users", lookup).await.0, 401);
    let (st, l) = second.filter("Users", lookup).await;
    assert_eq!((st, l["Resources"][0]["id"].as_str()), (200, Some(uid.as_str())), "{l}");
    let (st, u) = second.get(&user_path).await;
    assert_eq!((st, u["userName"].as_str()), (200, Some("pat@acme.test")), "{u}");
    assert_eq!(Scim { app, slug: tenant_id.clone(), token: s.token.clone() }.get("/Users").await.0, 401);
    assert_eq!(second.get("/Users").await.0, 200, "the tenant's other token still works");
    // The request log still records each request, and the refused ones are not in it.
    let (st, log) = app.get("/tenants/acme/scim-requests?limit=200").await;
    assert_eq!(st, 200, "{log}");
    let rows = log["data"].as_array().unwrap();
    assert!(rows.len() >= 5, "{log}");
    assert!(rows.iter().all(|r| r["status"] == 200 || (r["status"] == 201 && r["method"] == "POST")), "{log}");
    other.stop().await;
}

/// A user in more groups than an ID token carries (200, plus the upstream group): the token
/// has no `groups` but the overage claims pointing at userinfo, which returns them all; at the
/// limit the token still carries every group.
async fn groups_claim_overage(app: &TestApp) {
    let s = Scim::setup(app, "acme", "acme.test").await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let pat = s.user("pat@acme.test", json!({})).await;
    // 199 SCIM groups + the upstream group: exactly at the limit.
    let mut gids = Vec::new();
    for i in 0..200 {
        let members = if i < 199 { json!([{"value": pat}]) } else { json!([]) };
        let (st, g) =
            s.post("/Groups", json!({"schemas": [GROUP], "displayName": format!("g{i:03}"), "members": members})).await;
        assert_eq!(st, 201, "{g}");
        gids.push(g["id"].as_str().unwrap().to_string());
    }
    let (st, tok) = exchange(app, &cid, secret.as_deref(), &login(app, &cid, "acme", "pat@acme.test").await).await;
    assert_eq!(st, 200, "{tok}");
    let claims = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await;
    assert_eq!(claims["groups"].as_array().map(Vec::len), Some(200), "{claims}");
    assert!(claims.get("_claim_names").is_none());
    // One more: overage.
    let last = gids.last().unwrap();
    let (st, _) =
        s.patch(&format!("/Groups/{last}"), json!([{"op": "add", "path": "members", "value": [{"value": pat}]}])).await;
    assert_eq!(st, 200);
    let (st, tok) = exchange(app, &cid, secret.as_deref(), &login(app, &cid, "acme", "pat@acme.test").await).await;
    assert_eq!(st, 200, "{tok}");
    let claims = verify_jwt(app, tok["id_token"].as_str().unwrap(), &cid).await;
    assert!(claims.get("groups").is_none(), "{claims}");
    assert_eq!(claims["_claim_names"], json!({"groups": "src1"}));
    assert_eq!(claims["_claim_sources"]["src1"]["endpoint"], app.url("/oauth2/userinfo").as_str());
    let r = app
        .http
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(tok["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["groups"].as_array().map(Vec::len), Some(201), "userinfo returns every group");
}

/// Deep pages in id order (how Okta and Entra ID import) continue from where the previous page
/// ended (a paging hint in the database) instead of an `OFFSET`: a user deleted between two
/// pages no longer makes the next page skip one. A jump, an expired hint or another tenant's
/// query reads with `OFFSET`.
async fn deep_paging_follows_hints(app: &TestApp) {
    use fedgate::store::entities::scim_page_hint;
    use sea_orm::EntityTrait;
    let s = Scim::setup(app, "pg", "pg.test").await;
    let other = Scim::setup(app, "pq", "pq.test").await;
    for i in 0..23 {
        s.user(&format!("u{i:02}@pg.test"), json!({})).await;
    }
    for i in 0..5 {
        other.user(&format!("o{i}@pq.test"), json!({})).await;
    }
    let page = |v: &Value| -> Vec<String> {
        v["Resources"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
    };
    let (_, all) = s.get("/Users?count=100&attributes=id").await;
    let all = page(&all);
    assert_eq!(all.len(), 23);
    // A jump: OFFSET semantics.
    let (_, p) = s.get("/Users?startIndex=13&count=5").await;
    assert_eq!(page(&p), all[12..17]);
    // Page 1, then a user of page 1 goes, then the following pages.
    let (_, p1) = s.get("/Users?startIndex=1&count=5").await;
    assert_eq!(page(&p1), all[..5]);
    let hints = scim_page_hint::Entity::find().all(&app.state.db).await.unwrap();
    assert!(hints.iter().any(|h| h.last_id == all[4]), "a hint for the page after the first");
    assert_eq!(s.delete(&format!("/Users/{}", all[1])).await, 204);
    let mut seen = page(&p1);
    let mut start = 6;
    loop {
        let (st, p) = s.get(&format!("/Users?startIndex={start}&count=5")).await;
        assert_eq!(st, 200, "{p}");
        assert_eq!(p["totalResults"], 22);
        assert_eq!(p["startIndex"], start);
        let ids = page(&p);
        if ids.is_empty() {
            break;
        }
        start += ids.len() as i64;
        seen.extend(ids);
    }
    let mut expected = all.clone();
    expected.remove(1);
    seen.retain(|i| *i != all[1]);
    assert_eq!(seen, expected, "every remaining user once, in order: none skipped");
    // Another tenant's query at the same start index reads its own rows.
    let (_, p) = other.get("/Users?startIndex=6&count=5").await;
    assert_eq!((p["totalResults"].as_i64(), page(&p).len()), (Some(5), 0));
    let (_, p) = other.get("/Users?startIndex=2&count=2").await;
    assert_eq!(page(&p).len(), 2);
    // Expired hints are not used (OFFSET again) and clean-up removes them.
    app.clock.advance_secs(601);
    let (_, p) = s.get("/Users?startIndex=6&count=5").await;
    assert_eq!(page(&p), expected[5..10]);
    fedgate::store::cleanup::expired(&app.state.db, fedgate::clock::Clock::now(&app.clock) + 601).await.unwrap();
    assert!(scim_page_hint::Entity::find().all(&app.state.db).await.unwrap().is_empty());
}

/// Pages sorted by `userName` (ascending and descending) and groups by `displayName` continue
/// after the previous page's last row (a keyset seek on the key's index), like pages in id
/// order: a user deleted from an earlier page makes no later page skip anyone, and an id-order
/// hint at the same start index is not taken for a sorted one.
async fn sorted_deep_paging_follows_hints(app: &TestApp) {
    use fedgate::store::entities::scim_page_hint;
    use sea_orm::EntityTrait;
    let s = Scim::setup(app, "ps", "ps.test").await;
    for i in 0..17 {
        // Created in an order unrelated to the names (and so to the sort).
        s.user(&format!("n{:02}@ps.test", (i * 7) % 17), json!({})).await;
    }
    let ids_names = |v: &Value| -> Vec<(String, String)> {
        v["Resources"]
            .as_array()
            .unwrap_or_else(|| panic!("not a list: {v}"))
            .iter()
            .map(|r| (r["id"].as_str().unwrap().to_string(), r["userName"].as_str().unwrap().to_string()))
            .collect()
    };
    for (order, descending) in [("ascending", false), ("descending", true)] {
        let q = format!("sortBy=userName&sortOrder={order}");
        let (st, all) = s.get(&format!("/Users?{q}&count=100")).await;
        assert_eq!(st, 200, "{order}: {all}");
        let all = ids_names(&all);
        let mut names: Vec<String> = all.iter().map(|(_, n)| n.clone()).collect();
        names.sort();
        if descending {
            names.reverse();
        }
        assert_eq!(all.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>(), names, "{order}");
        // Page 1 in id order first: its hint (same start index) must not serve a sorted page.
        s.get("/Users?startIndex=1&count=4").await;
        let (st, p1) = s.get(&format!("/Users?{q}&startIndex=1&count=4")).await;
        assert_eq!(st, 200, "{order} page 1: {p1}");
        let p1 = ids_names(&p1);
        assert_eq!(p1, all[..4]);
        let hints = scim_page_hint::Entity::find().all(&app.state.db).await.unwrap();
        assert!(
            hints.iter().any(|h| h.last_id == format!("{}\u{1}{}", all[3].0, all[3].1)),
            "a hint holding the last row's id and userName"
        );
        // A user of page 1 goes; the next pages continue after page 1's last row.
        let gone = all[1].0.clone();
        assert_eq!(s.delete(&format!("/Users/{gone}")).await, 204);
        let mut seen = p1.clone();
        let mut start = 5;
        loop {
            let (st, p) = s.get(&format!("/Users?{q}&startIndex={start}&count=4")).await;
            assert_eq!(st, 200, "{p}");
            let page = ids_names(&p);
            if page.is_empty() {
                break;
            }
            start += page.len() as i64;
            seen.extend(page);
        }
        let expected: Vec<_> = all.iter().filter(|(id, _)| *id != gone).cloned().collect();
        seen.retain(|(id, _)| *id != gone);
        assert_eq!(seen, expected, "{order}: every remaining user once, in order");
        // Another user for the next order.
        s.user(&format!("back-{order}@ps.test"), json!({})).await;
    }
    // Groups by displayName, two at a time.
    for name in ["delta", "alpha", "echo", "charlie", "bravo"] {
        let (st, _) = s
            .post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name}))
            .await;
        assert_eq!(st, 201);
    }
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let (_, p) = s.get(&format!("/Groups?sortBy=displayName&startIndex={start}&count=2")).await;
        let page: Vec<String> =
            p["Resources"].as_array().unwrap().iter().map(|r| r["displayName"].as_str().unwrap().to_string()).collect();
        if page.is_empty() {
            break;
        }
        start += page.len() as i64;
        seen.extend(page);
    }
    assert_eq!(seen, ["alpha", "bravo", "charlie", "delta", "echo"]);
}

/// `totalResults` of an unfiltered list (the kept count) and of a filter matching every user
/// (a real count) are both `expected`.
async fn check_count(s: &Scim<'_>, expected: i64, why: &str) {
    let (_, kept) = s.get("/Users?count=0").await;
    let (_, counted) = s.filter("Users", "meta.created gt \"2000-01-01T00:00:00Z\"").await;
    assert_eq!(kept["totalResults"].as_i64(), Some(expected), "{why}: kept count");
    assert_eq!(counted["totalResults"].as_i64(), Some(expected), "{why}: real count");
}

/// An unfiltered `GET /Users` takes `totalResults` from the count the database's triggers keep;
/// it must equal a real count after every kind of write: create, deactivate, soft and hard
/// delete, SSO users (not SCIM-managed) and their adoption, another tenant's writes, a tenant
/// deleted.
async fn user_count_follows_every_write(app: &TestApp) {
    let s = Scim::setup(app, "cnt", "cnt.test").await;
    let other = Scim::setup(app, "cnu", "cnu.test").await;
    let (cid, _) = app.client("confidential", "ES256").await;
    check_count(&s, 0, "empty").await;
    let a = s.user("a@cnt.test", json!({})).await;
    let b = s.user("b@cnt.test", json!({})).await;
    s.user("c@cnt.test", json!({})).await;
    other.user("x@cnu.test", json!({})).await;
    check_count(&s, 3, "three created").await;
    check_count(&other, 1, "the other tenant's own").await;
    let (st, _) = s.patch(&format!("/Users/{a}"), json!([{"op": "replace", "path": "active", "value": false}])).await;
    assert_eq!(st, 200);
    check_count(&s, 3, "a deactivated user is still listed").await;
    assert_eq!(s.delete(&format!("/Users/{b}")).await, 204);
    check_count(&s, 2, "soft delete").await;
    // An SSO user is not SCIM-managed; provisioning it later adopts it.
    login(app, &cid, "cnt", "d@cnt.test").await;
    check_count(&s, 2, "an SSO user").await;
    s.user("d@cnt.test", json!({})).await;
    check_count(&s, 3, "adopted").await;
    let (st, _) = app.admin(Method::PATCH, "/tenants/cnt", Some(json!({"settings": {"scim_delete": "hard"}}))).await;
    assert_eq!(st, 200);
    assert_eq!(s.delete(&format!("/Users/{a}")).await, 204);
    check_count(&s, 2, "hard delete").await;
    check_count(&other, 1, "the other tenant untouched").await;
    let (st, _) = app.admin(Method::DELETE, "/tenants/cnt", None).await;
    assert!(st == 204 || st == 200, "{st}");
    let _ = Scim::setup(app, "cnt", "cnt.test").await;
}

/// A key lookup's first page is read before its count (store::scim_list): the total is the page's
/// length only when the page holds fewer rows than asked for; a full page still counts, a later
/// page still counts, and another tenant's user with the same userName is never a match.
async fn key_lookup_totals(app: &TestApp) {
    let s = Scim::setup(app, "keys", "keys.test").await;
    let other = Scim::setup(app, "keys2", "keys2.test").await;
    let id = s.user("kim@keys.test", json!({"externalId": "ext-kim"})).await;
    other.user("kim@keys.test", json!({"externalId": "ext-kim"})).await;
    for (q, total, items) in [
        ("filter=userName%20eq%20%22kim%40keys.test%22", 1, 1),
        ("filter=userName%20eq%20%22KIM%40KEYS.TEST%22&count=1", 1, 1),
        ("filter=externalId%20eq%20%22ext-kim%22&count=1", 1, 1),
        ("filter=userName%20eq%20%22kim%40keys.test%22&count=0", 1, 0),
        ("filter=userName%20eq%20%22kim%40keys.test%22&startIndex=2", 1, 0),
        ("filter=userName%20eq%20%22nobody%40keys.test%22", 0, 0),
    ] {
        let (st, list) = s.get(&format!("/Users?{q}")).await;
        assert_eq!(st, 200, "{q}: {list}");
        assert_eq!(list["totalResults"], total, "{q}: {list}");
        let got = list["Resources"].as_array().map(|a| a.len()).unwrap_or(0);
        assert_eq!(got, items, "{q}: {list}");
        if items == 1 {
            assert_eq!(list["Resources"][0]["id"], id.as_str(), "{q}: the tenant's own user");
        }
    }
    // A lookup's first page is read in the token's statement (GET); `.search` takes the usual
    // path (the token, then the page): the answers are the same, groups and all.
    let (_, g) = s.post("/Groups", json!({"schemas": [GROUP], "displayName": "Eng", "members": [{"value": id}]})).await;
    let lee = s.user("lee@keys.test", json!({"externalId": "ext-lee"})).await;
    for f in [
        r#"userName eq "KIM@keys.test""#,
        r#"externalId eq "ext-kim""#,
        r#"externalId eq "EXT-KIM""#,
        r#"id eq "nope""#,
        r#"userName eq "lee@keys.test""#,
    ] {
        let (st, got) = s.filter("Users", f).await;
        assert_eq!(st, 200, "{f}: {got}");
        let (st, want) = s.post("/Users/.search", json!({"schemas": [SEARCH], "filter": f})).await;
        assert_eq!(st, 200, "{f}: {want}");
        assert_eq!(got, want, "{f}");
    }
    let (_, l) = s.filter("Users", r#"userName eq "kim@keys.test""#).await;
    assert_eq!(l["Resources"][0]["groups"][0]["value"], g["id"], "{l}");
    let (_, l) = s.get(&format!("/Users?filter=id%20eq%20%22{id}%22&attributes=userName")).await;
    assert_eq!((l["totalResults"].as_i64(), l["Resources"][0].get("groups")), (Some(1), None), "{l}");
    // A deleted user is not found; the other tenant's never is.
    assert_eq!(s.delete(&format!("/Users/{lee}")).await, 204);
    assert_eq!(s.filter("Users", r#"userName eq "lee@keys.test""#).await.1["totalResults"], 0);
    let (_, l) = other.filter("Users", &format!("id eq \"{id}\"")).await;
    assert_eq!(l["totalResults"], 0, "{l}");
    // A bad filter is a 400 with a good token, and a 401 without one (the token comes first).
    let (st, e) = s.filter("Users", r#"userName eq"#).await;
    assert_eq!((st, e["scimType"].as_str()), (400, Some("invalidFilter")), "{e}");
    let wrong = Scim { app, slug: "keys".into(), token: format!("{}x", s.token) };
    assert_eq!(wrong.filter("Users", r#"userName eq"#).await.0, 401);
    assert_eq!(wrong.filter("Users", r#"userName eq "kim@keys.test""#).await.0, 401);
    // The lookups are in the tenant's request log (the refused ones are not).
    let (_, log) = app.get("/tenants/keys/scim-requests?limit=200").await;
    let rows = log["data"].as_array().unwrap();
    let lookups =
        rows.iter().filter(|r| r["method"] == "GET" && r["path"].as_str().unwrap().contains("filter=")).count();
    assert!(lookups >= 12, "{log}");
    assert!(rows.iter().all(|r| r["status"] != 401), "{log}");
}

/// SCIM writes without a transaction (PostgreSQL: a create, a PATCH and a PUT are one statement
/// each, their event and its deliveries in it) and with one (the tenant's webhook endpoints not
/// the ones expected, a deactivation, a user changed meanwhile): every write has its event, and
/// only its own, and every event its deliveries; a PATCH that changes nothing writes nothing;
/// If-Match is checked against the version the write replaces; two PATCHes at once both land,
/// one after the other. Both databases.
async fn writes_outside_a_transaction_keep_their_events(app: &TestApp) {
    use fedgate::store::entities::{delivery, event};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let scim = Scim::setup(app, "acme", "acme.test").await;
    let tenant = app.state.db.clone();
    let events_of = |uid: String| {
        let db = tenant.clone();
        async move {
            event::Entity::find()
                .filter(event::Column::Data.contains(uid.as_str()))
                .filter(event::Column::EventType.starts_with("user."))
                .order_by_asc(event::Column::Seq)
                .all(&db)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.event_type)
                .collect::<Vec<String>>()
        }
    };
    let new_user = |name: &str| {
        json!({"schemas": [USER], "userName": format!("{name}@acme.test"), "externalId": format!("ext-{name}"),
               "emails": [{"value": format!("{name}@acme.test"), "primary": true}], "active": true})
    };
    // No endpoint: create, PATCH, a no-op PATCH, a stale If-Match, a deactivation.
    let (s, u) = scim.post("/Users", new_user("alice")).await;
    assert_eq!(s, 201, "{u}");
    let uid = u["id"].as_str().unwrap().to_string();
    assert_eq!(events_of(uid.clone()).await, ["user.created"]);
    let (s, u) =
        scim.patch(&format!("/Users/{uid}"), json!([{"op": "replace", "path": "displayName", "value": "Al"}])).await;
    assert_eq!(
        (s, u["displayName"].as_str(), u["meta"]["version"].as_str()),
        (200, Some("Al"), Some("W/\"2\"")),
        "{u}"
    );
    let (s, u) =
        scim.patch(&format!("/Users/{uid}"), json!([{"op": "replace", "path": "displayName", "value": "Al"}])).await;
    assert_eq!((s, u["meta"]["version"].as_str()), (200, Some("W/\"2\"")), "a no-op writes nothing: {u}");
    let stale = [("if-match", "W/\"1\"")];
    let body = json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "B"}]});
    let ((s, e), _) = scim.req_h(Method::PATCH, &format!("/Users/{uid}"), Some(body), &stale).await;
    assert_eq!(s, 412, "{e}");
    assert_eq!(events_of(uid.clone()).await, ["user.created", "user.updated"]);
    // Two at once: both land, one after the other.
    let path = format!("/Users/{uid}");
    let (a, b) = tokio::join!(
        scim.patch(&path, json!([{"op": "replace", "path": "title", "value": "A"}])),
        scim.patch(&path, json!([{"op": "replace", "path": "nickName", "value": "B"}])),
    );
    assert_eq!((a.0, b.0), (200, 200), "{} / {}", a.1, b.1);
    let mut versions = [a.1["meta"]["version"].as_str().unwrap(), b.1["meta"]["version"].as_str().unwrap()];
    versions.sort();
    assert_eq!(versions, ["W/\"3\"", "W/\"4\""]);
    let (_, now) = scim.get(&path).await;
    assert_eq!((now["title"].as_str(), now["nickName"].as_str()), (Some("A"), Some("B")), "{now}");
    let (s, _) = scim.patch(&path, json!([{"op": "replace", "path": "active", "value": false}])).await;
    assert_eq!(s, 200);
    let (s, u) = scim.patch(&path, json!([{"op": "replace", "path": "active", "value": true}])).await;
    assert_eq!((s, u["active"].as_bool()), (200, Some(true)), "{u}");
    // A PUT: written alone too (a deactivation aside), If-Match against the version replaced.
    let mut doc = new_user("alice");
    doc["displayName"] = json!("Alice A");
    let (s, u) = scim.put(&path, doc.clone()).await;
    assert_eq!(
        (s, u["displayName"].as_str(), u["meta"]["version"].as_str()),
        (200, Some("Alice A"), Some("W/\"7\"")),
        "{u}"
    );
    let ((s, e), _) = scim.req_h(Method::PUT, &path, Some(doc.clone()), &[("if-match", "W/\"6\"")]).await;
    assert_eq!(s, 412, "{e}");
    doc["active"] = json!(false);
    let (s, u) = scim.put(&path, doc).await;
    assert_eq!((s, u["active"].as_bool()), (200, Some(false)), "{u}");
    assert_eq!(
        events_of(uid.clone()).await,
        [
            "user.created",
            "user.updated",
            "user.updated",
            "user.updated",
            "user.deactivated",
            "user.reactivated",
            "user.updated",
            "user.deactivated"
        ]
    );
    // A taken userName: 409, nothing written.
    let (s, other) = scim.post("/Users", new_user("bob")).await;
    assert_eq!(s, 201, "{other}");
    let bob = other["id"].as_str().unwrap().to_string();
    let (s, e) = scim
        .patch(&format!("/Users/{bob}"), json!([{"op": "replace", "path": "userName", "value": "alice@acme.test"}]))
        .await;
    assert_eq!((s, e["scimType"].as_str()), (409, Some("uniqueness")), "{e}");
    let (s, e) = scim.post("/Users", new_user("alice")).await;
    assert_eq!((s, e["scimType"].as_str()), (409, Some("uniqueness")), "{e}");
    assert_eq!(events_of(bob.clone()).await, ["user.created"]);
    // With an endpoint: the first write after it takes a transaction (its event learns the
    // endpoint), the next ones write their deliveries in their own statement; an endpoint added
    // meanwhile (for groups only) sends the next write through a transaction again. Every event
    // of the endpoint's time has its one delivery, whichever way it was written.
    let (s, w) = app.post("/webhooks", json!({"url": "http://127.0.0.1:9/hook", "event_types": ["user.*"]})).await;
    assert_eq!(s, 201, "{w}");
    let wid = w["id"].as_str().unwrap().to_string();
    let (s, carol) = scim.post("/Users", new_user("carol")).await;
    assert_eq!(s, 201, "{carol}");
    let cid = carol["id"].as_str().unwrap().to_string();
    let carol_path = format!("/Users/{cid}");
    let (s, _) = scim.patch(&carol_path, json!([{"op": "replace", "path": "displayName", "value": "C"}])).await;
    assert_eq!(s, 200);
    let (s, dave) = scim.post("/Users", new_user("dave")).await;
    assert_eq!(s, 201, "{dave}");
    let (s, g) = app.post("/webhooks", json!({"url": "http://127.0.0.1:9/groups", "event_types": ["group.*"]})).await;
    assert_eq!(s, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_string();
    for title in ["T1", "T2"] {
        let (s, _) = scim.patch(&carol_path, json!([{"op": "replace", "path": "title", "value": title}])).await;
        assert_eq!(s, 200);
    }
    let mut doc = new_user("carol");
    doc["displayName"] = json!("Carol");
    let (s, _) = scim.put(&carol_path, doc).await;
    assert_eq!(s, 200);
    assert_eq!(
        events_of(cid.clone()).await,
        ["user.created", "user.updated", "user.updated", "user.updated", "user.updated"]
    );
    let sent = |target: String| {
        let db = app.state.db.clone();
        async move { delivery::Entity::find().filter(delivery::Column::TargetId.eq(target)).all(&db).await.unwrap() }
    };
    let to_users = sent(wid).await;
    assert_eq!(to_users.len(), 6, "carol's 5 events and dave's 1, each delivered once");
    let seqs: std::collections::BTreeSet<i64> = to_users.iter().map(|d| d.event_seq).collect();
    assert_eq!(seqs.len(), 6, "{to_users:?}");
    for d in &to_users {
        let e = event::Entity::find().filter(event::Column::Seq.eq(d.event_seq)).one(&app.state.db).await.unwrap();
        let e = e.expect("the delivery's event");
        assert_eq!(d.event_id.as_deref(), Some(e.id.as_str()));
        let body: Value = serde_json::from_str(&d.payload).unwrap();
        assert_eq!(
            (body["type"].as_str(), &body["data"]),
            (Some(e.event_type.as_str()), &serde_json::from_str::<Value>(&e.data).unwrap())
        );
    }
    assert!(sent(gid).await.is_empty(), "no user event goes to the groups' endpoint");
}

both!(
    writes_outside_a_transaction_keep_their_events,
    key_lookup_totals,
    user_count_follows_every_write,
    deep_paging_follows_hints,
    sorted_deep_paging_follows_hints,
    wire_format_snapshots,
    groups_claim_overage,
    token_checked_on_every_request,
    provisioning_adopts_users_created_by_sso,
    okta_provisioning_sequence,
    entra_provisioning_sequence,
    concurrent_tenants,
    sso_links_to_provisioned_users_and_deprovisioning_revokes,
    link_rules_and_hard_delete,
    tenant_isolation,
    user_crud_meta_and_etags,
    filters_paging_sorting,
    errors_use_the_scim_schema,
    discovery_endpoints,
    groups_members_and_excluded_attributes,
);
