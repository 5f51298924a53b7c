//! The index set: nothing redundant, and every index accounted for in docs/indexes.md.

use crate::support::TestDb;

#[derive(Debug, sqlx::FromRow)]
struct IndexShape {
    name: String,
    table_name: String,
    method: String,
    /// Key columns by attribute number; 0 stands for an expression.
    columns: Vec<i16>,
    expressions: Option<String>,
    predicate: Option<String>,
    is_unique: bool,
}

async fn index_shapes(db: &TestDb) -> Vec<IndexShape> {
    let mut conn = db.connect().await;
    sqlx::query_as(
        "SELECT ic.relname::text AS name, tc.relname::text AS table_name, am.amname::text AS method,
                (i.indkey::int2[])[0:i.indnkeyatts - 1] AS columns,
                pg_get_expr(i.indexprs, i.indrelid) AS expressions,
                pg_get_expr(i.indpred, i.indrelid) AS predicate,
                i.indisunique AS is_unique
         FROM pg_index i
         JOIN pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_class tc ON tc.oid = i.indrelid
         JOIN pg_am am ON am.oid = ic.relam
         JOIN pg_namespace n ON n.oid = tc.relnamespace
         -- A partition's indexes are copies of its parent's (TokenUsage's months).
         WHERE n.nspname = 'public' AND NOT tc.relispartition
         ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

/// `shorter` is redundant next to `longer` when, on the same table with the same method,
/// predicate and expressions, its key columns are a prefix of the other's (whatever their
/// ASC/DESC direction: a B-tree scans both ways). A unique index is only redundant next to an
/// exact twin, because a longer index does not enforce its uniqueness.
fn is_redundant(shorter: &IndexShape, longer: &IndexShape) -> bool {
    shorter.name != longer.name
        && shorter.table_name == longer.table_name
        && shorter.method == longer.method
        && shorter.predicate == longer.predicate
        && shorter.expressions == longer.expressions
        && longer.columns.starts_with(&shorter.columns)
        && (!shorter.is_unique || shorter.columns == longer.columns)
}

#[tokio::test]
async fn the_migrated_catalog_has_no_redundant_index() {
    let db = TestDb::migrated().await;
    let shapes = index_shapes(&db).await;
    assert!(shapes.len() > 30, "expected the full index set, found {}", shapes.len());
    let redundant: Vec<String> = shapes
        .iter()
        .flat_map(|a| {
            shapes.iter().filter(move |b| is_redundant(a, b)).map(move |b| format!("{} ⊆ {}", a.name, b.name))
        })
        .collect();
    assert!(redundant.is_empty(), "redundant indexes: {redundant:?}");
}

#[test]
fn the_redundancy_rule_catches_prefixes_and_direction_twins_but_not_unique_keys() {
    let shape = |name: &str, columns: &[i16], unique: bool, predicate: Option<&str>| IndexShape {
        name: name.into(),
        table_name: "Project".into(),
        method: "btree".into(),
        columns: columns.to_vec(),
        expressions: None,
        predicate: predicate.map(Into::into),
        is_unique: unique,
    };
    let user = shape("user", &[2], false, None);
    let user_updated = shape("user_updated", &[2, 5], false, None);
    let user_updated_desc_twin = shape("user_updated_desc", &[2, 5], false, None);
    let unique_user = shape("unique_user", &[2], true, None);
    let public_user = shape("public_user", &[2], false, Some("visibility = 'PUBLIC'"));
    assert!(is_redundant(&user, &user_updated), "a prefix is redundant");
    assert!(is_redundant(&user_updated_desc_twin, &user_updated), "a direction twin is redundant");
    assert!(!is_redundant(&unique_user, &user_updated), "a unique key is not");
    assert!(!is_redundant(&public_user, &user_updated), "a different predicate is not");
    assert!(!is_redundant(&user_updated, &user), "a longer index is not");
}

#[tokio::test]
async fn every_index_in_the_catalog_is_in_the_ledger() {
    let ledger = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/indexes.md")).unwrap();
    let db = TestDb::migrated().await;
    let missing: Vec<String> = index_shapes(&db)
        .await
        .into_iter()
        .map(|shape| shape.name)
        .filter(|name| !name.starts_with('_') && !ledger.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "indexes missing from docs/indexes.md: {missing:?}");
}
