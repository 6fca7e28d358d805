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
    assert_eq!(u["active"], true);
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
    assert_eq!(r["active"], true);
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

both!(
    user_crud_meta_and_etags,
    filters_paging_sorting,
    errors_use_the_scim_schema,
    discovery_endpoints,
    groups_members_and_excluded_attributes,
);
