//! The translation's SQL for indexed columns, memberships and list queries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;
use fedgate_scim::filter::parse;

fn sql(dialect: Dialect, kind: ResourceKind, f: &str) -> (String, Vec<Param>) {
    let mut s = Sql::new(dialect);
    let out = s.filter(kind, &parse(f).unwrap()).unwrap();
    (out, s.params)
}

#[test]
fn indexed_columns_come_from_the_schema_table() {
    let (s, p) = sql(Dialect::Sqlite, ResourceKind::User, r#"userName eq "BJensen""#);
    assert_eq!(s, "(u.user_name_lower IS NOT NULL AND u.user_name_lower = ?1)");
    assert_eq!(p, [Param::Text("bjensen".into())]);
    let (s, _) = sql(Dialect::Postgres, ResourceKind::Group, r#"displayName eq "Eng""#);
    assert_eq!(s, "(g.display_name_lower IS NOT NULL AND g.display_name_lower = $1)");
    let (s, p) = sql(Dialect::Sqlite, ResourceKind::User, r#"meta.lastModified gt "1970-01-01T00:01:00Z""#);
    assert_eq!(s, "(u.updated_at IS NOT NULL AND u.updated_at > ?1)");
    assert_eq!(p, [Param::Int(60)]);
    let (s, _) = sql(Dialect::Sqlite, ResourceKind::User, "active eq true");
    assert_eq!(s, "(u.active = ?1)");
    let (s, _) = sql(Dialect::Sqlite, ResourceKind::Group, r#"meta.resourceType eq "group""#);
    assert_eq!(s, "('Group' IS NOT NULL AND lower('Group') = ?1)");
    // displayName of a user is in the document
    let (s, p) = sql(Dialect::Sqlite, ResourceKind::User, r#"displayName eq "x""#);
    assert!(s.starts_with("(json_extract(u.scim, ?1) IS NOT NULL"), "{s}");
    assert_eq!(p[0], Param::Text("$.\"displayName\"".into()));
}

#[test]
fn memberships_come_from_the_membership_table() {
    // An id: the owners of that key's memberships (a seek, not a probe per row of the tenant).
    let (s, _) = sql(Dialect::Sqlite, ResourceKind::Group, r#"members.value eq "usr_1""#);
    assert_eq!(s, "g.id IN (SELECT j1.group_id FROM scim_group_members j1 WHERE j1.user_id = ?1)");
    let (s, _) = sql(Dialect::Postgres, ResourceKind::Group, r#"members[value eq "usr_1"]"#);
    assert_eq!(s, "g.id IN (SELECT j1.group_id FROM scim_group_members j1 WHERE j1.user_id = $1)");
    let (s, _) = sql(Dialect::Sqlite, ResourceKind::User, r#"groups.value eq "grp_1""#);
    assert_eq!(s, "u.id IN (SELECT j1.user_id FROM scim_group_members j1 WHERE j1.group_id = ?1)");
    // Anything else is still a correlated EXISTS.
    let (s, _) = sql(Dialect::Sqlite, ResourceKind::Group, r#"members.value ne "usr_1""#);
    assert!(s.starts_with("(NOT EXISTS (SELECT 1 FROM scim_group_members j1 WHERE j1.group_id = g.id AND "), "{s}");
    let (s, _) = sql(Dialect::Postgres, ResourceKind::User, r#"groups[display eq "Eng"]"#);
    assert_eq!(
        s,
        "EXISTS (SELECT 1 FROM scim_group_members j1 WHERE j1.user_id = u.id AND ((SELECT gg.display_name FROM scim_groups gg WHERE gg.id = j1.group_id) IS NOT NULL AND lower((SELECT gg.display_name FROM scim_groups gg WHERE gg.id = j1.group_id)) = $1))"
    );
    let (s, _) = sql(Dialect::Sqlite, ResourceKind::User, r#"emails[type eq "work"]"#);
    assert!(s.starts_with("EXISTS (SELECT 1 FROM json_each(u.scim, ?1) AS j1 WHERE "), "{s}");
}

#[test]
fn list_queries() {
    let mut q = ListSql::new(ResourceKind::User, Dialect::Postgres, "org_1");
    q.filter(&parse(r#"emails.value co "x""#).unwrap()).unwrap();
    q.sort(&AttrPath::parse("name.familyName").unwrap(), true).unwrap();
    let (count, cp) = q.count_query();
    assert!(count.starts_with("SELECT COUNT(*) AS n FROM users u WHERE u.tenant_id = $1 AND u.scim IS NOT NULL"));
    assert!(!count.contains("ORDER BY"));
    let (page, pp) = q.page_query(3, 10, 100);
    assert!(
        page.ends_with(" ORDER BY lower(((u.scim::jsonb) #>> $3::text[])) DESC, u.id ASC LIMIT $4 OFFSET $5"),
        "{page}"
    );
    assert_eq!(cp.len(), 2);
    assert_eq!(&pp[..cp.len()], &cp[..]);
    assert_eq!(pp[2..], [Param::Text("{\"name\",\"familyName\"}".into()), Param::Int(10), Param::Int(2)]);
    let mut g = ListSql::new(ResourceKind::Group, Dialect::Sqlite, "org_1");
    assert!(g.sort(&AttrPath::parse("members").unwrap(), false).is_ok());
    assert!(g.filter(&parse("meta.created co \"x\"").unwrap()).is_err());
}

#[test]
fn starts_with_on_a_lower_cased_column_is_an_index_range() {
    let (s, p) = sql(Dialect::Sqlite, ResourceKind::User, r#"userName sw "Ab_""#);
    assert_eq!(s, "(u.user_name_lower IS NOT NULL AND u.user_name_lower LIKE ?1 ESCAPE '\\' AND u.user_name_lower >= ?2 AND u.user_name_lower < ?3)");
    assert_eq!(p, [Param::Text("ab\\_%".into()), Param::Text("ab_".into()), Param::Text("ab`".into())]);
    let (s, _) = sql(Dialect::Postgres, ResourceKind::Group, r#"displayName sw "eng""#);
    assert!(
        s.ends_with("LIKE $1 ESCAPE '\\' AND g.display_name_lower ~>=~ $2 AND g.display_name_lower ~<~ $3)"),
        "{s}"
    );
    // Not for co/ew, nor for columns compared case-exactly.
    assert!(!sql(Dialect::Sqlite, ResourceKind::User, r#"userName co "ab""#).0.contains(">="));
    assert!(!sql(Dialect::Sqlite, ResourceKind::User, r#"externalId sw "ab""#).0.contains(">="));
    assert_eq!(prefix_upper_bound("az"), Some("a{".into()));
    assert_eq!(prefix_upper_bound("a\u{10FFFF}"), Some("b".into()));
    assert_eq!(prefix_upper_bound("\u{D7FF}"), Some("\u{E000}".into()));
    assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
}

#[test]
fn key_lookups_do_not_walk_the_id_index() {
    let page = |d: Dialect, f: &str| {
        let mut q = ListSql::new(ResourceKind::User, d, "org_1");
        q.filter(&parse(f).unwrap()).unwrap();
        q.page_query(1, 10, 100).0
    };
    assert!(page(Dialect::Sqlite, r#"externalId eq "e1""#).contains("ORDER BY +u.id ASC LIMIT"));
    assert!(page(Dialect::Sqlite, r#"active eq true"#).contains("ORDER BY u.id ASC LIMIT"));
    assert!(page(Dialect::Postgres, r#"userName eq "a""#).contains("ORDER BY (u.id || '') ASC LIMIT"));
    assert!(page(Dialect::Postgres, r#"active eq true"#).contains("ORDER BY u.id ASC LIMIT"));
}

#[test]
fn email_values_come_from_their_table() {
    let mut q = ListSql::new(ResourceKind::User, Dialect::Sqlite, "org_1");
    q.filter(&parse(r#"emails[value eq "A@B.test"]"#).unwrap()).unwrap();
    let (count, p) = q.count_query();
    assert_eq!(
        count,
        "SELECT COUNT(*) AS n FROM users u WHERE +u.tenant_id = ?1 AND u.scim IS NOT NULL AND u.deleted_at IS NULL AND \
         u.id IN (SELECT em.user_id FROM scim_user_emails em WHERE em.tenant_id = ?1 AND em.value_lower = ?2)"
    );
    assert_eq!(p, [Param::Text("org_1".into()), Param::Text("a@b.test".into())]);
    // co: the trigram index on SQLite, pg_trgm serving the LIKE on PostgreSQL.
    let (s, p) = sql(Dialect::Sqlite, ResourceKind::User, r#"emails.value co "X_%""#);
    assert!(s.contains("em.value_lower LIKE ?1 ESCAPE '\\' AND em.rowid IN (SELECT rowid FROM scim_user_emails_trgm WHERE scim_user_emails_trgm MATCH ?2)"), "{s}");
    assert_eq!(p, [Param::Text("%x\\_\\%%".into()), Param::Text("\"x_%\"".into())]);
    let (s, _) = sql(Dialect::Postgres, ResourceKind::User, r#"emails.value co "xyz""#);
    assert!(s.ends_with("em.value_lower LIKE $1 ESCAPE '\\')"), "{s}");
    // Not for ne, pr, or a value filter on another sub-attribute.
    assert!(!sql(Dialect::Sqlite, ResourceKind::User, r#"emails.value ne "x""#).0.contains("scim_user_emails"));
    assert!(!sql(Dialect::Sqlite, ResourceKind::User, "emails pr").0.contains("scim_user_emails"));
    assert!(!sql(Dialect::Sqlite, ResourceKind::User, r#"emails[type eq "x"]"#).0.contains("scim_user_emails"));
}

#[test]
fn contains_uses_the_trigram_index_from_three_characters() {
    let (s, p) = sql(Dialect::Sqlite, ResourceKind::User, r#"userName co "A\"b""#);
    assert!(s.ends_with("AND u.rowid IN (SELECT rowid FROM scim_users_trgm WHERE scim_users_trgm MATCH ?2))"), "{s}");
    assert_eq!(p[1], Param::Text("user_name_lower : \"a\"\"b\"".into()));
    let (s, p) = sql(Dialect::Sqlite, ResourceKind::User, r#"externalId co "AbC""#);
    assert!(s.contains("scim_users_trgm"), "{s}");
    assert_eq!(p[1], Param::Text("external_id : \"AbC\"".into()));
    assert!(!sql(Dialect::Sqlite, ResourceKind::User, r#"userName co "ab""#).0.contains("trgm"));
    assert!(!sql(Dialect::Postgres, ResourceKind::User, r#"userName co "abc""#).0.contains("trgm"));
    assert!(!sql(Dialect::Sqlite, ResourceKind::Group, r#"displayName co "abc""#).0.contains("trgm"));
    // Started from only when the index restricts the whole filter (not under OR or NOT).
    let count = |f: &str| {
        let mut q = ListSql::new(ResourceKind::User, Dialect::Sqlite, "org_1");
        q.filter(&parse(f).unwrap()).unwrap();
        q.count_query().0
    };
    assert!(count(r#"userName co "abc" and active eq true"#).contains("WHERE +u.tenant_id"));
    assert!(count(r#"userName co "abc" or active eq true"#).contains("WHERE u.tenant_id"));
    assert!(count(r#"not (userName co "abc")"#).contains("WHERE u.tenant_id"));
    // Many matches: the page walks the id index (SQLite).
    let page = |total: i64| {
        let mut q = ListSql::new(ResourceKind::User, Dialect::Sqlite, "org_1");
        q.filter(&parse(r#"userName co "abc""#).unwrap()).unwrap();
        q.page_query(1, 10, total).0
    };
    assert!(page(DENSE_MATCHES + 1).contains("FROM users u INDEXED BY idx_users_scim_live WHERE u.tenant_id"));
    assert!(page(DENSE_MATCHES).contains("FROM users u WHERE +u.tenant_id"));
}
