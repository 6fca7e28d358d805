//! SCIM filters translated to SQL (RFC 7644 §3.4.2.2), evaluated by the database — never in
//! memory. Indexed columns serve the lookups provisioning clients make (`userName` through the
//! lower-cased `user_name_lower`, `externalId`, `id`, `displayName`, `active`, `meta.*`,
//! memberships); every other attribute is read from the stored resource with the database's JSON
//! functions (`json_extract`/`json_each` on SQLite, `jsonb` operators on PostgreSQL).
//! All values are bound parameters; attribute names only ever reach SQL as bound JSON paths.
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::models::{canonical_name, is_multi_valued, Kind};
use crate::scim::path::AttrPath;
use sea_orm::DbBackend;

/// A WHERE fragment under construction with its bound values.
pub struct Sql {
    pub backend: DbBackend,
    pub params: Vec<sea_orm::Value>,
    aliases: usize,
}

/// What a filter names: a column (with its comparison semantics) or a JSON location.
enum Target {
    Col(String, ColKind),
    Json { base: String, path: Vec<String> },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ColKind {
    /// Case-exact text.
    Exact,
    /// A lower-cased column: compare with the lower-cased value.
    Lower,
    /// Case-insensitive text (lower() both sides).
    Ci,
    Bool,
    /// Unix seconds compared with an RFC 3339 date-time.
    Time,
}

/// Where relative paths (inside `attr[...]`) point.
enum Elem {
    Json(String),
    GroupMembers(String),
    UserGroups(String),
}

type R<T> = Result<T, String>;

impl Sql {
    pub fn new(backend: DbBackend) -> Self {
        Self { backend, params: Vec::new(), aliases: 0 }
    }

    fn pg(&self) -> bool {
        self.backend == DbBackend::Postgres
    }

    /// Binds a value and returns its placeholder.
    pub fn bind(&mut self, v: impl Into<sea_orm::Value>) -> String {
        self.params.push(v.into());
        if self.pg() {
            format!("${}", self.params.len())
        } else {
            format!("?{}", self.params.len())
        }
    }

    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("j{}", self.aliases)
    }

    fn doc(&self, kind: Kind) -> String {
        let t = kind.alias();
        if self.pg() {
            format!("({t}.scim::jsonb)")
        } else {
            format!("{t}.scim")
        }
    }

    /// `filter` as a boolean SQL expression that is never NULL.
    pub fn filter(&mut self, kind: Kind, f: &Filter) -> R<String> {
        self.expr(kind, f, None, 0)
    }

    fn expr(&mut self, kind: Kind, f: &Filter, elem: Option<&Elem>, depth: usize) -> R<String> {
        if depth > 64 {
            return Err("filter is nested too deeply".into());
        }
        Ok(match f {
            Filter::And(l, r) => {
                format!("({} AND {})", self.expr(kind, l, elem, depth + 1)?, self.expr(kind, r, elem, depth + 1)?)
            }
            Filter::Or(l, r) => {
                format!("({} OR {})", self.expr(kind, l, elem, depth + 1)?, self.expr(kind, r, elem, depth + 1)?)
            }
            Filter::Not(i) => format!("(NOT {})", self.expr(kind, i, elem, depth + 1)?),
            Filter::Present(p) => self.leaf(kind, p, elem, None)?,
            Filter::Compare { path, op, value } => self.leaf(kind, path, elem, Some((*op, value)))?,
            Filter::ValuePath { path, filter } => {
                if elem.is_some() {
                    return Err("a value filter cannot be nested".into());
                }
                let (from, e) = self.elements(kind, path)?;
                let inner = self.expr(kind, filter, Some(&e), depth + 1)?;
                format!("EXISTS (SELECT 1 FROM {from}{inner})")
            }
        })
    }

    /// `FROM` clause iterating the elements of a multi-valued attribute, and the element context.
    fn elements(&mut self, kind: Kind, path: &AttrPath) -> R<(String, Elem)> {
        let a = self.alias();
        let t = kind.alias();
        if path.is_core() && kind == Kind::Group && path.attr_is("members") {
            return Ok((format!("scim_group_members {a} WHERE {a}.group_id = {t}.id AND "), Elem::GroupMembers(a)));
        }
        if path.is_core() && kind == Kind::User && path.attr_is("groups") {
            return Ok((format!("scim_group_members {a} WHERE {a}.user_id = {t}.id AND "), Elem::UserGroups(a)));
        }
        let keys = json_keys(kind, path, false)?;
        let doc = self.doc(kind);
        if self.pg() {
            let p = self.bind(pg_path(&keys));
            let p2 = self.bind(pg_path(&keys));
            Ok((
                format!(
                    "jsonb_array_elements(CASE WHEN jsonb_typeof({doc} #> {p}::text[]) = 'array' THEN {doc} #> {p2}::text[] ELSE '[]'::jsonb END) AS {a}(v) WHERE "
                ),
                Elem::Json(format!("{a}.v")),
            ))
        } else {
            let p = self.bind(sqlite_path(&keys));
            Ok((format!("json_each({doc}, {p}) AS {a} WHERE "), Elem::Json(format!("{a}.value"))))
        }
    }

    /// A comparison (or `pr` when `cmp` is None) on one attribute.
    fn leaf(
        &mut self,
        kind: Kind,
        path: &AttrPath,
        elem: Option<&Elem>,
        cmp: Option<(CompareOp, &CompValue)>,
    ) -> R<String> {
        if let Some(e) = elem {
            let target = self.relative(e, path)?;
            return self.compare(target, cmp);
        }
        // A sub-attribute of a multi-valued attribute, or the multi-valued attribute itself:
        // some element matches.
        let multi = path.is_core() && is_multi_valued(&path.attr)
            || (kind == Kind::User && path.is_core() && path.attr_is("groups"));
        if multi {
            let base = AttrPath { schema_urn: path.schema_urn.clone(), attr: path.attr.clone(), sub_attr: None };
            let (from, e) = self.elements(kind, &base)?;
            let sub = AttrPath::new(path.sub_attr.clone().unwrap_or_else(|| "value".into()));
            let target = self.relative(&e, &sub)?;
            return Ok(match cmp {
                // `ne` means no element equals; `eq null` means no element has a value.
                Some((CompareOp::Ne, v)) if *v != CompValue::Null => {
                    let eq = self.compare(target, Some((CompareOp::Eq, v)))?;
                    format!("(NOT EXISTS (SELECT 1 FROM {from}{eq}))")
                }
                Some((CompareOp::Eq, CompValue::Null)) => {
                    let present = self.compare(target, None)?;
                    format!("(NOT EXISTS (SELECT 1 FROM {from}{present}))")
                }
                _ => {
                    let inner = self.compare(target, cmp)?;
                    format!("EXISTS (SELECT 1 FROM {from}{inner})")
                }
            });
        }
        let target = self.column(kind, path)?;
        self.compare(target, cmp)
    }

    fn relative(&mut self, e: &Elem, path: &AttrPath) -> R<Target> {
        let sub = path.attr.as_str();
        Ok(match e {
            Elem::Json(base) => {
                let mut keys = vec![canonical_name(sub).to_string()];
                if let Some(s) = &path.sub_attr {
                    keys.push(canonical_name(s).to_string());
                }
                Target::Json { base: base.clone(), path: keys }
            }
            Elem::GroupMembers(a) => match sub.to_ascii_lowercase().as_str() {
                "value" => Target::Col(format!("{a}.user_id"), ColKind::Exact),
                "display" => {
                    Target::Col(format!("(SELECT us.user_name FROM users us WHERE us.id = {a}.user_id)"), ColKind::Ci)
                }
                "type" => Target::Col("'User'".into(), ColKind::Ci),
                _ => Target::Col("NULL".into(), ColKind::Exact),
            },
            Elem::UserGroups(a) => match sub.to_ascii_lowercase().as_str() {
                "value" => Target::Col(format!("{a}.group_id"), ColKind::Exact),
                "display" => Target::Col(
                    format!("(SELECT gg.display_name FROM scim_groups gg WHERE gg.id = {a}.group_id)"),
                    ColKind::Ci,
                ),
                "type" => Target::Col("'direct'".into(), ColKind::Ci),
                _ => Target::Col("NULL".into(), ColKind::Exact),
            },
        })
    }

    /// A top-level (or complex single-valued) attribute: an indexed column when there is one.
    fn column(&mut self, kind: Kind, path: &AttrPath) -> R<Target> {
        let t = kind.alias();
        let key = path.normalized_key();
        let col = |c: &str, k: ColKind| Some(Target::Col(format!("{t}.{c}"), k));
        let mapped = match (kind, key.as_str()) {
            (_, "id") => col("id", ColKind::Exact),
            (_, "externalid") => col("external_id", ColKind::Exact),
            (_, "meta.created") => col("created_at", ColKind::Time),
            (_, "meta.lastmodified") => col("updated_at", ColKind::Time),
            (_, "meta.resourcetype") => {
                Some(Target::Col(format!("'{}'", if kind == Kind::User { "User" } else { "Group" }), ColKind::Ci))
            }
            (Kind::User, "username") => col("user_name_lower", ColKind::Lower),
            (Kind::User, "active") => col("active", ColKind::Bool),
            (Kind::Group, "displayname") => col("display_name_lower", ColKind::Lower),
            _ => None,
        };
        if let Some(m) = mapped {
            return Ok(m);
        }
        Ok(Target::Json { base: self.doc(kind), path: json_keys(kind, path, true)? })
    }

    fn json_text(&mut self, base: &str, keys: &[String]) -> String {
        if self.pg() {
            let p = self.bind(pg_path(keys));
            format!("({base} #>> {p}::text[])")
        } else {
            let p = self.bind(sqlite_path(keys));
            format!("json_extract({base}, {p})")
        }
    }

    fn compare(&mut self, target: Target, cmp: Option<(CompareOp, &CompValue)>) -> R<String> {
        let (x, kind) = match target {
            Target::Col(c, k) => (c, k),
            Target::Json { base, path } => (self.json_text(&base, &path), ColKind::Ci),
        };
        let Some((op, value)) = cmp else {
            return Ok(match kind {
                ColKind::Exact | ColKind::Lower | ColKind::Ci if !x.starts_with('\'') => {
                    if self.pg() || !x.starts_with("json_extract") {
                        format!("({x} IS NOT NULL AND {x} <> '')")
                    } else {
                        format!("({x} IS NOT NULL AND {x} <> '' AND {x} <> '[]' AND {x} <> '{{}}')")
                    }
                }
                _ => format!("({x} IS NOT NULL)"),
            });
        };
        if *value == CompValue::Null {
            return Ok(match op {
                CompareOp::Eq => format!("({x} IS NULL)"),
                CompareOp::Ne => format!("({x} IS NOT NULL)"),
                _ => "(1=0)".into(),
            });
        }
        if op == CompareOp::Ne {
            let eq = self.compare_value(&x, kind, CompareOp::Eq, value)?;
            return Ok(format!("(NOT {eq})"));
        }
        self.compare_value(&x, kind, op, value)
    }

    fn compare_value(&mut self, x: &str, kind: ColKind, op: CompareOp, value: &CompValue) -> R<String> {
        let sql_op = match op {
            CompareOp::Eq => "=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            _ => "LIKE",
        };
        let like = |s: &str| {
            let esc = s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            match op {
                CompareOp::Co => format!("%{esc}%"),
                CompareOp::Sw => format!("{esc}%"),
                _ => format!("%{esc}"),
            }
        };
        let is_like = sql_op == "LIKE";
        let esc = if is_like { " ESCAPE '\\'" } else { "" };
        match (kind, value) {
            (ColKind::Time, CompValue::Str(s)) => {
                let secs = crate::scim::filter::parse_datetime(s)
                    .map(|ns| (ns.div_euclid(1_000_000_000)) as i64)
                    .ok_or_else(|| format!("{s:?} is not an RFC 3339 date-time"))?;
                if is_like {
                    return Err("co, sw and ew do not apply to date-times".into());
                }
                let p = self.bind(secs);
                Ok(format!("({x} IS NOT NULL AND {x} {sql_op} {p})"))
            }
            (ColKind::Bool, CompValue::Bool(b)) if op == CompareOp::Eq => {
                let p = self.bind(*b);
                Ok(format!("({x} = {p})"))
            }
            (ColKind::Bool, _) => Err("a boolean attribute only supports eq, ne and pr with true or false".into()),
            (ColKind::Ci, CompValue::Bool(b)) => {
                if op != CompareOp::Eq {
                    return Err("booleans only support eq, ne and pr".into());
                }
                Ok(if self.pg() {
                    format!("({x} IS NOT NULL AND {x} = '{b}')")
                } else {
                    format!("({x} IS NOT NULL AND {x} = {})", i32::from(*b))
                })
            }
            (_, CompValue::Bool(_)) => Err("this attribute is not a boolean".into()),
            (_, CompValue::Num(n)) => {
                if is_like {
                    return Err("co, sw and ew do not apply to numbers".into());
                }
                let f = n.as_f64().unwrap_or(0.0);
                if self.pg() {
                    let p = self.bind(f);
                    Ok(format!(
                        "({x} IS NOT NULL AND (CASE WHEN {x} ~ '^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$' THEN ({x})::double precision END) {sql_op} {p})"
                    ))
                } else {
                    let p = self.bind(f);
                    Ok(format!("({x} IS NOT NULL AND typeof({x}) IN ('integer','real') AND {x} {sql_op} {p})"))
                }
            }
            (_, CompValue::Str(s)) => {
                let (lhs, v) = match kind {
                    ColKind::Exact => (x.to_string(), s.clone()),
                    ColKind::Lower => (x.to_string(), s.to_lowercase()),
                    _ => (format!("lower({x})"), s.to_lowercase()),
                };
                let v = if is_like { like(&v) } else { v };
                let p = self.bind(v);
                Ok(format!("({x} IS NOT NULL AND {lhs} {sql_op} {p}{esc})"))
            }
            (_, CompValue::Null) => Ok("(1=0)".into()),
        }
    }

    /// An ORDER BY expression for `sortBy`.
    pub fn sort_expr(&mut self, kind: Kind, path: &AttrPath) -> R<String> {
        if path.is_core() && is_multi_valued(&path.attr) {
            // RFC 7644 §3.4.2.3: a multi-valued attribute sorts by its primary (or first) value.
            let keys = json_keys(kind, &AttrPath::new(path.attr.clone()), false)?;
            let sub = canonical_name(path.sub_attr.as_deref().unwrap_or("value")).to_string();
            let mut k0 = keys.clone();
            k0.push("0".into());
            k0.push(sub);
            let doc = self.doc(kind);
            let x = if self.pg() {
                let p = self.bind(pg_path(&k0));
                format!("({doc} #>> {p}::text[])")
            } else {
                let p = self.bind(format!("{}[0].\"{}\"", sqlite_path(&keys), k0[k0.len() - 1]));
                format!("json_extract({doc}, {p})")
            };
            return Ok(format!("lower({x})"));
        }
        Ok(match self.column(kind, path)? {
            Target::Col(c, ColKind::Ci) => format!("lower({c})"),
            Target::Col(c, _) => c,
            Target::Json { base, path } => {
                let x = self.json_text(&base, &path);
                format!("lower({x})")
            }
        })
    }
}

/// The JSON keys of an attribute path in the stored document (canonical spelling).
fn json_keys(kind: Kind, path: &AttrPath, with_sub: bool) -> R<Vec<String>> {
    let _ = kind;
    let mut keys = Vec::new();
    if let Some(urn) = path.extension_urn() {
        keys.push(crate::scim::models::canonical_urn(urn));
    }
    keys.push(canonical_name(&path.attr).to_string());
    if with_sub {
        if let Some(s) = &path.sub_attr {
            keys.push(canonical_name(s).to_string());
        }
    }
    for k in &keys {
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b":._$-".contains(&b)) {
            return Err(format!("invalid attribute name {k:?}"));
        }
    }
    Ok(keys)
}

fn sqlite_path(keys: &[String]) -> String {
    let mut s = String::from("$");
    for k in keys {
        s.push_str(".\"");
        s.push_str(k);
        s.push('"');
    }
    s
}

fn pg_path(keys: &[String]) -> String {
    let parts: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    format!("{{{}}}", parts.join(","))
}
