//! Discovery's sorts and the keyset positions their cursors carry.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    /// likeCount
    Popular,
    /// forkCount
    Forks,
    /// viewCount
    Trending,
    /// createdAt
    Recent,
    /// isFeatured, then updatedAt
    Featured,
    /// the name's similarity to the search term (only with `search`)
    Relevance,
}

/// Where a page ends, in the terms of its sort. Serialized into the opaque cursor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Position {
    Count(i64, String),
    Time(NaiveDateTime, String),
    Featured(bool, NaiveDateTime, String),
    Score(f32, String),
}

impl Position {
    /// Whether a cursor's position belongs to `sort`: a cursor from another sort is refused
    /// rather than bound to the wrong columns.
    pub fn fits(&self, sort: Sort) -> bool {
        matches!(
            (self, sort),
            (Position::Count(..), Sort::Popular | Sort::Forks | Sort::Trending)
                | (Position::Time(..), Sort::Recent)
                | (Position::Featured(..), Sort::Featured)
                | (Position::Score(..), Sort::Relevance)
        )
    }
}
