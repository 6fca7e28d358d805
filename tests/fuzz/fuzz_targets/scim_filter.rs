//! Any input: the filter parser never panics; what parses prints and, when the printed form is
//! within the filter length limit, re-parses to the same AST (printing escapes control
//! characters, `\u0001` is 6 bytes for 1, so a filter near the limit can print longer than the
//! limit: then re-parsing must refuse it as too long, nothing else); the SQL translation never
//! panics on either database.
#![no_main]
use fedgate_scim::{filter, ResourceKind};
use libfuzzer_sys::fuzz_target;

/// The server's filter -> SQL translation, compiled here on its own: the file is pure (it uses
/// only fedgate-scim and std), so this target needs neither the server crate nor a database.
#[path = "../../../src/store/scim_sql.rs"]
#[allow(dead_code)]
mod scim_sql;

use scim_sql::{Dialect, Sql};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(f) = filter::parse(s) {
        let printed = f.to_string();
        if printed.len() <= filter::MAX_FILTER_LEN {
            assert_eq!(filter::parse(&printed).as_ref(), Ok(&f), "round trip of {printed:?}");
        } else {
            assert!(
                matches!(filter::parse(&printed), Err(filter::FilterError::TooLong { .. })),
                "a printed form over the limit is refused as too long: {printed:?}"
            );
        }
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            for kind in ResourceKind::ALL {
                let _ = Sql::new(dialect).filter(kind, &f);
            }
        }
        let _ = filter::matches(&f, &serde_json::json!({"userName": "a", "emails": [{"value": "b"}]}), |_| false);
    }
});
