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

/// A time after every row's: the keyset position "before the end of time" that starts a
/// newest-first list, so the first page and later ones share one statement.
pub fn end_of_time() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(9999, 12, 31).and_then(|day| day.and_hms_opt(0, 0, 0)).expect("a valid date")
}
