//! The statements assembled at run time (`db::assembled`) are checked as `cargo sqlx prepare`
//! checks the literal ones: each variant is prepared against the migrated schema.

use sqlx::postgres::PgTypeInfo;
use sqlx::Executor;
use vibing2::db::assembled;

use crate::support::TestDb;

#[tokio::test]
async fn every_assembled_statement_prepares_against_the_migrated_schema() {
    let db = TestDb::migrated().await;
    let mut conn = db.connect().await;
    let variants = assembled::variants();
    assert!(variants.len() >= 50, "the list covers every variant: {}", variants.len());
    let mut failures = Vec::new();
    for variant in &variants {
        let types: Vec<PgTypeInfo> = variant.parameter_types.iter().map(|name| PgTypeInfo::with_name(name)).collect();
        if let Err(error) = conn.prepare_with(variant.sql.as_str(), &types).await {
            failures.push(format!("{}: {error}", variant.name));
        }
    }
    assert!(failures.is_empty(), "statements that do not prepare:\n{}", failures.join("\n"));
}
