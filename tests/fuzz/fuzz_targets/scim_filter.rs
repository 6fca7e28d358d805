//! Any input: the filter parser never panics; what parses prints and, when the printed form is
//! within the filter length limit, re-parses to the same AST (printing escapes control
//! characters, `\u0001` is 6 bytes for 1, so a filter near the limit can print longer than the
//! limit: then re-parsing must refuse it as too long, nothing else); the SQL translation never
//! panics on either database.
#![no_main]
use fedgate::scim::filter;
use fedgate::scim::models::Kind;
use fedgate::scim::sql::Sql;
use libfuzzer_sys::fuzz_target;
use sea_orm::DbBackend;

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
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for kind in [Kind::User, Kind::Group] {
                let _ = Sql::new(backend).filter(kind, &f);
            }
        }
        let _ = filter::matches(&f, &serde_json::json!({"userName": "a", "emails": [{"value": "b"}]}), |_| false);
    }
});
