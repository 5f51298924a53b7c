//! The schema's `TIMESTAMP(3)` columns hold UTC without saying so; on the wire they are
//! RFC 3339 with a `Z`. Use with `#[serde(with = "crate::db::timestamp")]`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat};
use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(value: &NaiveDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&value.and_utc().to_rfc3339_opts(SecondsFormat::Millis, true))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDateTime, D::Error> {
    let text = String::deserialize(deserializer)?;
    DateTime::parse_from_rfc3339(&text).map(|time| time.naive_utc()).map_err(serde::de::Error::custom)
}

/// The same, for nullable columns.
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<NaiveDateTime>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => super::serialize(value, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<NaiveDateTime>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| DateTime::parse_from_rfc3339(&text).map(|time| time.naive_utc()))
            .transpose()
            .map_err(serde::de::Error::custom)
    }
}

/// The keyset position of a page ordered on (a time, an id).
pub type Position = (NaiveDateTime, String);

/// The position a page starts from when no cursor was given, so that the first page and the
/// later ones run the same statement: `far` is a time beyond every row in the direction read.
pub fn start_position(after: Option<&Position>, far: NaiveDateTime) -> (NaiveDateTime, &str) {
    match after {
        Some((time, id)) => (*time, id.as_str()),
        None => (far, ""),
    }
}

/// Later than any stored time: where a newest-first page starts. (chrono's own extremes lie
/// outside PostgreSQL's timestamp range.)
pub fn end_of_time() -> NaiveDateTime {
    at_midnight(9999, 12, 31)
}

/// Earlier than any stored time: where an oldest-first page starts.
pub fn start_of_time() -> NaiveDateTime {
    at_midnight(1, 1, 1)
}

fn at_midnight(year: i32, month: u32, day: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(year, month, day).and_then(|date| date.and_hms_opt(0, 0, 0)).expect("a valid date")
}
