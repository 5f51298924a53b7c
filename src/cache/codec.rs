//! Cached values on the wire: one format-version byte, then MessagePack with field names
//! (compact, and tolerant of optional fields). A value of another version reads as a miss.

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
}
