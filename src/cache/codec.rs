//! Cached values on the wire: one format-version byte, then MessagePack with field names
//! (compact, and tolerant of optional fields). A value of another version reads as a miss.
//! In Redis, a value is stamped with the generation of its scope it was loaded under (8 bytes,
//! big-endian, before the rest), so that the generation and the value come in one MGET.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Bump with any change to a cached type's shape; the key namespace's `v1` moves with it.
pub const FORMAT_VERSION: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> anyhow::Result<Vec<u8>> {
    let mut bytes = vec![FORMAT_VERSION];
    rmp_serde::encode::write_named(&mut bytes, value)?;
    Ok(bytes)
}

/// None for bytes of another format version or that do not decode as `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, body)) => rmp_serde::from_slice(body).ok(),
        _ => None,
    }
}

/// A value as Redis keeps it: stamped with `generation`.
pub fn stamped(generation: u64, bytes: &[u8]) -> Vec<u8> {
    let mut stamped = Vec::with_capacity(8 + bytes.len());
    stamped.extend_from_slice(&generation.to_be_bytes());
    stamped.extend_from_slice(bytes);
    stamped
}

/// The value Redis held, if it was loaded under `generation` or a later one (its loader knew of
/// every write up to then) and has this format version; None for a stale or foreign value.
pub fn current(mut stamped: Vec<u8>, generation: u64) -> Option<Vec<u8>> {
    let stamp = u64::from_be_bytes(stamped.get(..8)?.try_into().ok()?);
    (stamp >= generation && stamped.get(8) == Some(&FORMAT_VERSION)).then(|| {
        stamped.drain(..8);
        stamped
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Sample {
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        score: Option<f32>,
        agents: serde_json::Value,
    }

    #[test]
    fn round_trips_and_refuses_other_versions() {
        let value = Sample { name: "x".into(), score: None, agents: serde_json::json!(["a", {"b": 1}]) };
        let bytes = encode(&value).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<Sample>(&bytes), Some(value));
        let mut other = bytes.clone();
        other[0] = FORMAT_VERSION + 1;
        assert_eq!(decode::<Sample>(&other), None);
        assert_eq!(decode::<Sample>(&[]), None);
    }

    #[test]
    fn a_stamped_value_is_current_for_its_generation_and_earlier_ones_only() {
        let bytes = encode(&"value").unwrap();
        let stored = stamped(7, &bytes);
        assert_eq!(current(stored.clone(), 7).as_deref(), Some(&bytes[..]));
        assert_eq!(current(stored.clone(), 6).as_deref(), Some(&bytes[..]));
        assert_eq!(current(stored.clone(), 8), None);
        assert_eq!(current(stored[..5].to_vec(), 0), None);
        let mut other_format = stored;
        other_format[8] = FORMAT_VERSION + 1;
        assert_eq!(current(other_format, 7), None);
    }
}
