//! The value rules of the Phase-1 import: SQLite enforced no type, so every value is checked
//! and converted on its own. Each rule either gives the value PostgreSQL will hold, or says
//! why the value cannot be held ([`Refusal`]); a rule that changed a value tells how
//! ([`Changed`]), so the import can report it.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use rusqlite::types::Value;

/// Why a value cannot be imported: the row it is in is quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// How a value was changed on its way in. Every change is counted in the report; a
/// `reported` one is also listed row by row (in `MigrationIssue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    pub what: &'static str,
    pub reported: bool,
}

impl Changed {
    pub const fn reported(what: &'static str) -> Self {
        Changed { what, reported: true }
    }

    pub const fn counted(what: &'static str) -> Self {
        Changed { what, reported: false }
    }
}

/// Milliseconds since the Unix epoch, UTC.
pub type EpochMillis = i64;

/// 1970-01-01 and 2100-01-01: the span a Phase-1 time can honestly have.
const EARLIEST: EpochMillis = 0;
const LATEST: EpochMillis = 4_102_444_800_000;

/// A DATETIME: TEXT (`YYYY-MM-DD HH:MM:SS[.fff]`, or ISO 8601 with `T` and `Z` or an offset),
/// INTEGER epoch milliseconds, or epoch milliseconds stored as TEXT. Fractions below a
/// millisecond are cut (PostgreSQL keeps milliseconds here).
pub fn datetime(value: &Value) -> Result<EpochMillis, Refusal> {
    let millis = match value {
        Value::Integer(millis) => *millis,
        Value::Real(millis) if millis.fract() == 0.0 && millis.abs() < 1e15 => *millis as i64,
        Value::Text(text) => parse_datetime_text(text.trim())?,
        other => return Err(Refusal(format!("not a date and time: {}", describe(other)))),
    };
    if (EARLIEST..LATEST).contains(&millis) {
        Ok(millis)
    } else {
        Err(Refusal(format!("{millis} ms since 1970 is outside 1970–2100")))
    }
}

fn parse_datetime_text(text: &str) -> Result<EpochMillis, Refusal> {
    let unparsable = || Refusal(format!("not a date and time: {text:?}"));
    if !text.is_empty() && text.trim_start_matches('-').bytes().all(|byte| byte.is_ascii_digit()) {
        return text.parse().map_err(|_| unparsable());
    }
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
        return Ok(with_offset.timestamp_millis());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.fZ", "%Y-%m-%dT%H:%M:%S%.fZ"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(naive.and_utc().timestamp_millis());
        }
    }
    Err(unparsable())
}

/// The PostgreSQL `timestamp(3)` of an epoch-milliseconds value.
pub fn naive(millis: EpochMillis) -> NaiveDateTime {
    DateTime::from_timestamp_millis(millis)
        .map(|time| time.naive_utc())
        .unwrap_or_else(|| NaiveDate::MIN.and_hms_opt(0, 0, 0).expect("midnight"))
}

/// `activeAgents`: a JSON array of agent names, that array JSON-encoded twice, a
/// comma-separated list, or empty. Anything that was not already a JSON array of strings is
/// reported; a value with no list in it at all becomes `[]`.
pub fn agents(value: &Value) -> Result<(Vec<String>, Option<Changed>), Refusal> {
    let text = match value {
        Value::Null => return Ok((Vec::new(), Some(Changed::reported("NULL agents became []")))),
        Value::Text(text) => text.as_str(),
        other => return Err(Refusal(format!("agents are not text: {}", describe(other)))),
    };
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Array(items)) => string_array(items).map(|names| (names, None)),
        Ok(serde_json::Value::String(inner)) => match serde_json::from_str::<serde_json::Value>(&inner) {
            Ok(serde_json::Value::Array(items)) => {
                string_array(items).map(|names| (names, Some(Changed::reported("JSON encoded twice; decoded"))))
            }
            _ => Ok((comma_list(&inner), Some(Changed::reported("a JSON string, read as a comma-separated list")))),
        },
        Ok(_) => Err(Refusal(format!("agents are JSON but not a list: {text:?}"))),
        Err(_) if text.trim().is_empty() => Ok((Vec::new(), Some(Changed::reported("empty; became []")))),
        Err(_) => Ok((comma_list(text), Some(Changed::reported("a comma-separated list; became a JSON array")))),
    }
}

fn string_array(items: Vec<serde_json::Value>) -> Result<Vec<String>, Refusal> {
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::String(name) => Ok(strip_nul(&name).0),
            other => Err(Refusal(format!("an agent that is not a name: {other}"))),
        })
        .collect()
}

fn comma_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|name| !name.is_empty()).map(|name| strip_nul(name).0).collect()
}

/// The text of `jsonb`'s output for an array of strings (`["a", "b"]`), so the checksum of the
/// value PostgreSQL holds can be computed here too.
pub fn agents_json(names: &[String]) -> String {
    let items: Vec<String> = names.iter().map(|name| serde_json::Value::String(name.clone()).to_string()).collect();
    format!("[{}]", items.join(", "))
}

/// An enum written in any case becomes its canonical spelling; an unknown one is refused.
pub fn canonical(value: &Value, allowed: &[&'static str]) -> Result<(&'static str, Option<Changed>), Refusal> {
    let text = match value {
        Value::Text(text) => text.trim(),
        other => return Err(Refusal(format!("not one of {allowed:?}: {}", describe(other)))),
    };
    match allowed.iter().find(|known| known.eq_ignore_ascii_case(text)) {
        Some(known) if *known == text => Ok((known, None)),
        Some(known) => Ok((known, Some(Changed::counted("enum spelled in another case; canonicalised")))),
        None => Err(Refusal(format!("{text:?} is not one of {allowed:?}"))),
    }
}

/// An INTEGER column, which may hold TEXT or REAL: converted when it is integral and fits.
pub fn integer(value: &Value) -> Result<(i64, Option<Changed>), Refusal> {
    match value {
        Value::Integer(number) => Ok((*number, None)),
        Value::Real(number) if number.fract() == 0.0 && number.abs() < 9.0e15 => {
            Ok((*number as i64, Some(Changed::counted("integer stored as REAL; converted"))))
        }
        Value::Text(text) => match text.trim().parse::<i64>() {
            Ok(number) => Ok((number, Some(Changed::counted("integer stored as TEXT; converted")))),
            Err(_) => match text.trim().parse::<f64>() {
                Ok(number) if number.fract() == 0.0 && number.abs() < 9.0e15 => {
                    Ok((number as i64, Some(Changed::counted("integer stored as TEXT; converted"))))
                }
                _ => Err(Refusal(format!("not an integer: {text:?}"))),
            },
        },
        other => Err(Refusal(format!("not an integer: {}", describe(other)))),
    }
}

/// An INTEGER column of PostgreSQL's `integer`.
pub fn int4(value: &Value) -> Result<(i32, Option<Changed>), Refusal> {
    let (number, changed) = integer(value)?;
    let number = i32::try_from(number).map_err(|_| Refusal(format!("{number} does not fit in an integer")))?;
    Ok((number, changed))
}

/// A REAL column, which may hold INTEGER or TEXT.
pub fn real(value: &Value) -> Result<f64, Refusal> {
    match value {
        Value::Real(number) => Ok(*number),
        Value::Integer(number) => Ok(*number as f64),
        Value::Text(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| Refusal(format!("not a number: {text:?}"))),
        other => Err(Refusal(format!("not a number: {}", describe(other)))),
    }
}

/// A TEXT column. PostgreSQL text cannot hold NUL, so NUL bytes are removed (reported); a
/// number stored in a text column is written as text.
pub fn text(value: &Value) -> Result<(String, Option<Changed>), Refusal> {
    match value {
        Value::Text(text) => {
            let (clean, removed) = strip_nul(text);
            Ok((clean, removed.then_some(Changed::reported("NUL bytes removed"))))
        }
        Value::Integer(number) => Ok((number.to_string(), Some(Changed::counted("number stored in a text column")))),
        Value::Real(number) => Ok((number.to_string(), Some(Changed::counted("number stored in a text column")))),
        Value::Blob(bytes) => match String::from_utf8(bytes.clone()) {
            Ok(text) => {
                let (clean, _) = strip_nul(&text);
                Ok((clean, Some(Changed::reported("UTF-8 stored as a blob"))))
            }
            Err(_) => Err(Refusal(format!("binary data ({} bytes) in a text column", bytes.len()))),
        },
        Value::Null => Err(Refusal("NULL in a required text column".to_owned())),
    }
}

/// A nullable TEXT column.
pub fn optional_text(value: &Value) -> Result<(Option<String>, Option<Changed>), Refusal> {
    match value {
        Value::Null => Ok((None, None)),
        other => text(other).map(|(text, changed)| (Some(text), changed)),
    }
}

fn strip_nul(text: &str) -> (String, bool) {
    if text.contains('\0') {
        (text.replace('\0', ""), true)
    } else {
        (text.to_owned(), false)
    }
}

/// What a stored password is.
#[derive(Debug, PartialEq, Eq)]
pub enum Password {
    /// A bcrypt hash (Phase 1), kept for the rehash on the first login, or an argon2id one.
    Hash,
    /// Plaintext, a placeholder or empty: never kept as a credential.
    NotAHash,
}

pub fn password(stored: &str) -> Password {
    let bcrypt = ["$2a$", "$2b$", "$2y$"].iter().any(|prefix| stored.starts_with(prefix)) && stored.len() == 60;
    if bcrypt || stored.starts_with("$argon2id$") {
        Password::Hash
    } else {
        Password::NotAHash
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_owned(),
        Value::Integer(number) => format!("the integer {number}"),
        Value::Real(number) => format!("the real {number}"),
        Value::Text(text) => format!("{text:?}"),
        Value::Blob(bytes) => format!("a blob of {} bytes", bytes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_value(text: &str) -> Value {
        Value::Text(text.to_owned())
    }

    #[test]
    fn every_phase1_datetime_encoding_is_the_same_utc_instant() {
        let instant = 1_760_092_008_912;
        for value in [
            Value::Integer(instant),
            text_value("1760092008912"),
            text_value("2025-10-10 10:26:48.912"),
            text_value("2025-10-10T10:26:48.912Z"),
            text_value("2025-10-10T12:26:48.912+02:00"),
            Value::Real(instant as f64),
        ] {
            assert_eq!(datetime(&value), Ok(instant), "{value:?}");
        }
        assert_eq!(datetime(&text_value("2025-10-10 10:07:58")), Ok(1_760_090_878_000));
        assert_eq!(datetime(&text_value("2025-10-10 10:07:58.123456")), Ok(1_760_090_878_123), "cut to ms");
    }

    #[test]
    fn a_datetime_outside_1970_to_2100_or_unparsable_is_refused_never_clamped() {
        for value in [
            Value::Integer(-1),
            Value::Integer(4_102_444_800_000),
            text_value("1760256481187000"),
            text_value("2101-01-01 00:00:00"),
            text_value("1969-12-31 23:59:59"),
            text_value("yesterday"),
            text_value(""),
            Value::Null,
            Value::Real(1.5),
        ] {
            assert!(datetime(&value).is_err(), "{value:?}");
        }
    }

    #[test]
    fn agents_become_a_json_array_and_every_other_shape_is_reported() {
        let names = vec!["frontend-developer".to_owned(), "code-reviewer".to_owned()];
        assert_eq!(agents(&text_value(r#"["frontend-developer","code-reviewer"]"#)), Ok((names.clone(), None)));
        let twice = text_value(r#""[\"frontend-developer\",\"code-reviewer\"]""#);
        assert_eq!(agents(&twice).unwrap(), (names.clone(), Some(Changed::reported("JSON encoded twice; decoded"))));
        let (listed, changed) = agents(&text_value("frontend-developer, code-reviewer,")).unwrap();
        assert_eq!((listed, changed.is_some()), (names, true));
        assert_eq!(agents(&text_value("  ")).unwrap(), (vec![], Some(Changed::reported("empty; became []"))));
        assert!(agents(&Value::Null).unwrap().1.is_some());
        assert!(agents(&text_value(r#"{"a": 1}"#)).is_err());
        assert!(agents(&text_value("[1, 2]")).is_err());
    }

    #[test]
    fn agents_json_is_what_jsonb_prints() {
        assert_eq!(agents_json(&[]), "[]");
        assert_eq!(agents_json(&["a".into(), "b \"q\"\n".into()]), r#"["a", "b \"q\"\n"]"#);
    }

    #[test]
    fn enums_in_any_case_are_canonical_and_unknown_ones_refused() {
        const VISIBILITY: &[&str] = &["PRIVATE", "PUBLIC"];
        assert_eq!(canonical(&text_value("PUBLIC"), VISIBILITY), Ok(("PUBLIC", None)));
        assert_eq!(canonical(&text_value("public"), VISIBILITY).unwrap().0, "PUBLIC");
        assert!(canonical(&text_value("public"), VISIBILITY).unwrap().1.is_some());
        assert!(canonical(&text_value("friends"), VISIBILITY).is_err());
        assert!(canonical(&Value::Integer(1), VISIBILITY).is_err());
    }

    #[test]
    fn integers_stored_as_text_or_real_are_converted_and_fractions_refused() {
        assert_eq!(integer(&Value::Integer(7)), Ok((7, None)));
        assert_eq!(integer(&text_value(" 42 ")).unwrap().0, 42);
        assert_eq!(integer(&Value::Real(10000.0)).unwrap().0, 10000);
        assert_eq!(integer(&text_value("12.0")).unwrap().0, 12);
        for refused in [Value::Real(1.5), text_value("1.5"), text_value("many"), Value::Null] {
            assert!(integer(&refused).is_err(), "{refused:?}");
        }
        assert!(int4(&Value::Integer(i64::from(i32::MAX) + 1)).is_err());
    }

    #[test]
    fn nul_bytes_are_removed_and_reported() {
        assert_eq!(text(&text_value("a\0b")), Ok(("ab".to_owned(), Some(Changed::reported("NUL bytes removed")))));
        assert_eq!(text(&text_value("plain")), Ok(("plain".to_owned(), None)));
        assert!(text(&Value::Blob(vec![0xff, 0xfe])).is_err());
        assert_eq!(optional_text(&Value::Null), Ok((None, None)));
    }

    #[test]
    fn only_a_bcrypt_hash_is_a_credential() {
        let bcrypt = "$2b$10$6NwdYntNX0fHKk0Wb2lZ7u9b9wz2wQfQ0l6o3jv2HqzE8tL5c7b2S";
        assert_eq!(bcrypt.len(), 60);
        assert_eq!(password(bcrypt), Password::Hash);
        for stored in ["password_hash", "", "hunter2", "$2b$short"] {
            assert_eq!(password(stored), Password::NotAHash, "{stored}");
        }
    }
}
