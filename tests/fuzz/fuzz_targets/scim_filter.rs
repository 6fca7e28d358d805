//! Any input: the filter parser never panics; what parses prints and re-parses to the same AST;
//! the SQL translation never panics on either database.
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
        assert_eq!(filter::parse(&printed).as_ref(), Ok(&f), "round trip of {printed:?}");
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for kind in [Kind::User, Kind::Group] {
                let _ = Sql::new(backend).filter(kind, &f);
            }
        }
        let _ = filter::matches(&f, &serde_json::json!({"userName": "a", "emails": [{"value": "b"}]}), |_| false);
    }
});
