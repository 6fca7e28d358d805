//! The layer rule (docs/architecture.md): every `crate::` path in src/ points to the same or a
//! lower layer. Read from the source, so the picture in the docs stays true.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top-level modules of the server crate and their layer (higher may use lower).
pub const LAYERS: &[(&str, u8)] = &[
    // base
    ("blocking", 0),
    ("clock", 0),
    ("config", 0),
    ("error_code", 0),
    ("html", 0),
    ("ids", 0),
    ("keys", 0),
    ("metrics", 0),
    ("telemetry", 0),
    ("net", 0),
    ("store", 0),
    ("templates", 0),
    ("util", 0),
    ("validation", 0),
    // domain
    ("claims", 1),
    ("directory", 1),
    ("events", 1),
    ("tenant", 1),
    ("traces", 1),
    ("upstream", 1),
    // surfaces
    ("admin", 2),
    ("console", 2),
    ("demo", 2),
    ("http", 2),
    ("issuer", 2),
    ("login", 2),
    ("portal", 2),
    ("scim", 2),
    // top
    ("app", 3),
    ("lib", 3),
    ("main", 3),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every upward reference: (file, line number, the referenced module).
pub fn violations() -> Vec<(String, usize, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().to_string();
        if rel.starts_with("bin/") {
            continue; // other binaries are their own crates
        }
        let module = rel.split('/').next().unwrap().trim_end_matches(".rs").to_string();
        let own = layer(&module).unwrap_or_else(|| panic!("src/{rel}: module `{module}` has no layer in LAYERS"));
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (pos, _) in code.match_indices("crate::") {
                let rest = &code[pos + "crate::".len()..];
                let target: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if target.is_empty() || target == module {
                    continue;
                }
                let theirs = layer(&target).unwrap_or_else(|| panic!("src/{rel}:{}: unknown module `{target}`", i + 1));
                if theirs > own {
                    out.push((format!("src/{rel}"), i + 1, target));
                }
            }
        }
    }
    out
}

#[test]
fn no_module_imports_a_layer_above_it() {
    let v = violations();
    let mut by_file: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (f, l, t) in &v {
        by_file.entry(f).or_default().push(format!("{l}: crate::{t}"));
    }
    let report: Vec<String> = by_file.iter().map(|(f, ls)| format!("{f}: {}", ls.join(", "))).collect();
    assert!(v.is_empty(), "{} files import a layer above their own:\n{}", by_file.len(), report.join("\n"));
}

/// Source files under `src/` (not `src/bin`, other binaries are their own crates), as (path
/// relative to src, text).
fn sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .into_iter()
        .map(|f| (f.strip_prefix(&src).unwrap().to_string_lossy().to_string(), std::fs::read_to_string(&f).unwrap()))
        .filter(|(rel, _)| !rel.starts_with("bin/"))
        .collect()
}

/// Every query lives in `src/store/`: no other file names a sea-orm query trait or sea-orm at all
/// (it names the handle and error types `store::conn` re-exports).
#[test]
fn no_query_outside_the_store() {
    const QUERY_TRAITS: &[&str] = &[
        "EntityTrait",
        "QueryFilter",
        "QueryOrder",
        "QuerySelect",
        "ActiveModelTrait",
        "ConnectionTrait",
        "TransactionTrait",
        "PaginatorTrait",
        "Statement::from",
        "ColumnTrait",
    ];
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|(rel, _)| !rel.starts_with("store/"))
        .filter_map(|(rel, text)| {
            let mut hits: Vec<&str> = QUERY_TRAITS.iter().copied().filter(|t| text.contains(t)).collect();
            // Nor sea-orm itself: the store re-exports the handle and error types (`store::conn`);
            // ids.rs derives sea-orm's value traits for the id newtypes.
            if rel != "ids.rs" && text.contains("sea_orm::") {
                hits.push("sea_orm::");
            }
            (!hits.is_empty()).then(|| format!("src/{rel}: {}", hits.join(", ")))
        })
        .collect();
    assert!(offenders.is_empty(), "queries outside src/store:\n{}", offenders.join("\n"));
}

/// Protocol cores carry no infrastructure: `upstream/` and `claims/` import neither actix nor
/// sea-orm.
#[test]
fn protocol_cores_import_neither_actix_nor_sea_orm() {
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|(rel, _)| rel.starts_with("upstream/") || rel.starts_with("claims/"))
        .filter(|(_, text)| text.contains("actix_web") || text.contains("sea_orm"))
        .map(|(rel, _)| format!("src/{rel}"))
        .collect();
    assert!(offenders.is_empty(), "protocol code importing actix or sea-orm: {offenders:?}");
}
