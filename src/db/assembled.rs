//! The statements that are assembled at run time rather than written as checked `query!`
//! literals. Each is built from constant fragments only (never from input), so that every
//! variant is a static statement with a plan of its own. `variants` lists them all, and a
//! test prepares each against the migrated schema, as `cargo sqlx prepare` does for the
//! literals.
//!
//! Not listed, by nature: the migrations' own SQL files, and DDL that names an identifier
//! (`DROP INDEX CONCURRENTLY` of an invalid index, `CREATE DATABASE` of the embedded
//! cluster). The benchmark's statements run against two schemas (Phase-2 and current) and are
//! prepared by the benchmark itself.

use crate::db::{collab, competitions, discovery, likes, messages, usage};
use crate::domain::discovery::Sort;
use crate::domain::{Direction, GroupBy};

/// One variant of an assembled statement.
pub struct Variant {
    /// Which function built it, with which arguments.
    pub name: String,
    pub sql: String,
    /// The types of the leading parameters as the code binds them, for statements that bind
    /// a parameter they do not use (discovery binds all four filters, used or not); the
    /// server infers the others.
    pub parameter_types: Vec<&'static str>,
}

/// Every variant of every assembled statement.
pub fn variants() -> Vec<Variant> {
    let mut all: Vec<(String, String)> = Vec::new();
    let mut typed = Vec::new();
    for role_filter in [false, true] {
        for direction in [Direction::Older, Direction::Newer] {
            all.push((
                format!("messages::page_sql({role_filter}, {direction:?})"),
                messages::page_sql(role_filter, direction),
            ));
        }
    }
    for group_by in [GroupBy::Day, GroupBy::Endpoint, GroupBy::Model] {
        all.push((format!("usage::summary_sql({group_by:?})"), usage::summary_sql(group_by)));
    }
    let sorts = [Sort::Popular, Sort::Forks, Sort::Trending, Sort::Recent, Sort::Featured, Sort::Relevance];
    for sort in sorts {
        for with_type in [false, true] {
            for with_search in [false, true] {
                // Relevance ranks by the search term: it is only ever run with one.
                if sort == Sort::Relevance && !with_search {
                    continue;
                }
                for with_position in [false, true] {
                    let mut parameter_types = vec!["int8", "text", "text", "text"];
                    if with_position {
                        parameter_types.extend(discovery::position_types(sort));
                    }
                    typed.push(Variant {
                        name: format!(
                            "discovery::discovery_sql({sort:?}, {with_type}, {with_search}, {with_position})"
                        ),
                        sql: discovery::discovery_sql(sort, with_type, with_search, with_position),
                        parameter_types,
                    });
                }
            }
        }
    }
    for liked in [false, true] {
        all.push((format!("likes::set_sql({liked})"), likes::set_sql(liked)));
    }
    for filtered in [false, true] {
        all.push((format!("competitions::page_sql({filtered})"), competitions::page_sql(filtered)));
    }
    for first_page in [false, true] {
        all.push((format!("collab::members_sql({first_page})"), collab::members_sql(first_page)));
    }
    typed.extend(all.into_iter().map(|(name, sql)| Variant { name, sql, parameter_types: Vec::new() }));
    typed
}
