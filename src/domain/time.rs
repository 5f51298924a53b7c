//! Time as the schema and the wire see it. The `TIMESTAMP(3)` columns hold UTC without saying
//! so; on the wire a time is RFC 3339 with milliseconds and a `Z`. [`UtcTime`] carries both.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC time, read from and written to `TIMESTAMP` columns, and sent as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type, utoipa::ToSchema)]
#[sqlx(transparent)]
#[schema(value_type = String, format = DateTime)]
pub struct UtcTime(pub NaiveDateTime);

impl UtcTime {
    pub fn now() -> Self {
        UtcTime(chrono::Utc::now().naive_utc())
    }
}

impl From<NaiveDateTime> for UtcTime {
    fn from(time: NaiveDateTime) -> Self {
        UtcTime(time)
    }
}

impl Serialize for UtcTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.and_utc().to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl<'de> Deserialize<'de> for UtcTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text).map(|time| UtcTime(time.naive_utc())).map_err(serde::de::Error::custom)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_travel_as_rfc3339_utc_with_milliseconds() {
        let time = UtcTime(at_midnight(2026, 1, 2));
        let json = serde_json::to_string(&time).unwrap();
        assert_eq!(json, r#""2026-01-02T00:00:00.000Z""#);
        assert_eq!(serde_json::from_str::<UtcTime>(&json).unwrap(), time);
        assert!(serde_json::from_str::<UtcTime>(r#""yesterday""#).is_err());
    }
}
