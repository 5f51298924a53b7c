//! Keyset pagination: the `{"items", "nextCursor"}` envelope, page sizes, opaque signed
//! cursors (a small JSON position and its HMAC, so clients can neither read them as an API
//! nor build them), and [`Keyset`], the one helper every list uses to go from a request to a
//! page.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::error::Error;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The same page with each item converted, e.g. from rows to wire types.
    pub fn map<U>(self, convert: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(convert).collect(), next_cursor: self.next_cursor }
    }

    /// The same page with the items `keep` turns into none left out, and the same cursor: a
    /// page whose positions were read first and its rows after (a row gone in between) is
    /// short, and the list still goes on from its last position.
    pub fn filter_map<U>(self, keep: impl FnMut(T) -> Option<U>) -> Page<U> {
        Page { items: self.items.into_iter().filter_map(keep).collect(), next_cursor: self.next_cursor }
    }
}

/// Page-size rules of one list: a default and a cap.
#[derive(Debug, Clone, Copy)]
pub struct PageSize {
    pub default: u32,
    pub max: u32,
}

impl PageSize {
    pub const STANDARD: PageSize = PageSize { default: 20, max: 100 };
    /// A page of a project's messages.
    pub const MESSAGES: PageSize = PageSize { default: 50, max: 100 };
    /// A page of a project's files, the first of which comes with the project: metadata only,
    /// and a web app wants the whole tree, so larger pages.
    pub const FILES: PageSize = PageSize { default: 100, max: 1000 };

    /// The requested size; 0, or more than the list's cap, is refused rather than quietly
    /// changed, so a client never mistakes a short page for the end.
    pub fn resolve(self, requested: Option<u32>) -> Result<i64, Error> {
        match requested {
            Some(0) => Err(Error::Unprocessable("limit must be at least 1".into())),
            Some(limit) if limit > self.max => Err(Error::Unprocessable(format!("limit must be at most {}", self.max))),
            Some(limit) => Ok(i64::from(limit)),
            None => Ok(i64::from(self.default)),
        }
    }
}

/// One list request, checked: where it starts (`after`, decoded from the cursor) and how
/// many rows it shows. Statements fetch [`Keyset::fetch`] rows, one more than the page, and
/// [`Keyset::page`] turns them into the page and the next cursor.
#[derive(Debug, Clone)]
pub struct Keyset<P> {
    pub after: Option<P>,
    pub limit: i64,
}

impl<P: Serialize + DeserializeOwned> Keyset<P> {
    pub fn parse(size: PageSize, cursor: Option<&str>, limit: Option<u32>) -> Result<Self, Error> {
        let limit = size.resolve(limit)?;
        let after = cursor.map(decode_cursor).transpose()?;
        Ok(Keyset { after, limit })
    }

    /// The first page of `limit` rows.
    pub fn first(limit: i64) -> Self {
        Keyset { after: None, limit }
    }

    pub fn is_first(&self) -> bool {
        self.after.is_none()
    }

    /// How many rows to fetch: the page and one more, which only says another page exists.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    pub fn page<T>(&self, rows: Vec<T>, position: impl Fn(&T) -> P) -> Page<T> {
        page_from(rows, self.limit, position)
    }
}

/// The key cursors are signed with: process-wide, set once at startup.
static CURSOR_KEY: OnceLock<[u8; 32]> = OnceLock::new();
/// How much of the HMAC a cursor carries: 128 bits.
const TAG_BYTES: usize = 16;

/// Sets the key cursors are signed with (any length: it is hashed to 32 bytes). The first
/// call wins; it returns false if a key was already in use. Without a call, a random key is
/// drawn on first use, and cursors last as long as the process.
pub fn set_cursor_key(secret: &[u8]) -> bool {
    CURSOR_KEY.set(Sha256::digest(secret).into()).is_ok()
}

fn cursor_mac() -> Hmac<Sha256> {
    let key = CURSOR_KEY.get_or_init(rand::random);
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length")
}

pub fn encode_cursor<P: Serialize>(position: &P) -> String {
    let json = serde_json::to_vec(position).expect("cursor positions serialize");
    let mut mac = cursor_mac();
    mac.update(&json);
    let tag = mac.finalize().into_bytes();
    format!("{}.{}", URL_SAFE_NO_PAD.encode(&json), URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES]))
}

pub fn decode_cursor<P: DeserializeOwned>(cursor: &str) -> Result<P, Error> {
    let forged = || Error::BadRequest("cursor is not one this service issued".into());
    let (body, tag) = cursor.split_once('.').ok_or_else(forged)?;
    let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| forged())?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| forged())?;
    let mut mac = cursor_mac();
    mac.update(&json);
    // Compared in constant time.
    mac.verify_truncated_left(&tag).map_err(|_| forged())?;
    if tag.len() != TAG_BYTES {
        return Err(forged());
    }
    serde_json::from_slice(&json).map_err(|_| forged())
}

/// Builds a page from `limit + 1` fetched rows: the extra row only says another page exists.
pub fn page_from<T, P: Serialize>(mut rows: Vec<T>, limit: i64, position: impl Fn(&T) -> P) -> Page<T> {
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if has_more { rows.last().map(|last| encode_cursor(&position(last))) } else { None };
    Page { items: rows, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        let cursor = encode_cursor(&("2026-01-01T00:00:00", "abc"));
        let decoded: (String, String) = decode_cursor(&cursor).unwrap();
        assert_eq!(decoded, ("2026-01-01T00:00:00".into(), "abc".into()));
        assert!(decode_cursor::<(String, String)>("not base64 !").is_err());
        assert!(decode_cursor::<i64>(&encode_cursor(&"text")).is_err());
    }

    #[test]
    fn a_well_formed_cursor_without_this_services_signature_is_refused() {
        let genuine = encode_cursor(&("2026-01-01T00:00:00", "abc"));
        let (body, tag) = genuine.split_once('.').unwrap();
        // Unsigned, as cursors were before they were signed: valid base64url JSON.
        assert!(decode_cursor::<(String, String)>(body).is_err());
        // A position of the client's choosing under the genuine tag.
        let chosen = URL_SAFE_NO_PAD.encode(br#"["2026-01-01T00:00:00","zzz"]"#);
        assert!(decode_cursor::<(String, String)>(&format!("{chosen}.{tag}")).is_err());
        // A shortened tag.
        assert!(decode_cursor::<(String, String)>(&format!("{body}.{}", &tag[..4])).is_err());
        assert!(decode_cursor::<(String, String)>(&genuine).is_ok());
    }

    #[test]
    fn page_size_defaults_and_refuses_zero_and_more_than_its_cap() {
        let size = PageSize { default: 50, max: 100 };
        assert_eq!(size.resolve(None).unwrap(), 50);
        assert_eq!(size.resolve(Some(100)).unwrap(), 100);
        assert!(size.resolve(Some(101)).is_err());
        assert!(size.resolve(Some(0)).is_err());
    }

    #[test]
    fn the_extra_row_decides_the_next_cursor() {
        let page = page_from(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(page.items, [1, 2]);
        assert_eq!(decode_cursor::<i32>(page.next_cursor.as_deref().unwrap()).unwrap(), 2);
        assert!(page_from(vec![1, 2], 2, |n| *n).next_cursor.is_none());
    }

    #[test]
    fn a_short_filtered_page_keeps_the_cursor_of_its_positions() {
        let page = page_from(vec![1, 2, 3], 2, |n| *n).filter_map(|n| (n != 2).then_some(n * 10));
        assert_eq!(page.items, [10]);
        assert_eq!(decode_cursor::<i32>(page.next_cursor.as_deref().unwrap()).unwrap(), 2);
    }

    #[test]
    fn a_keyset_fetches_one_more_row_than_it_shows() {
        let keyset = Keyset::<i32>::parse(PageSize::STANDARD, Some(&encode_cursor(&7)), Some(3)).unwrap();
        assert_eq!((keyset.after, keyset.limit, keyset.fetch()), (Some(7), 3, 4));
        assert!(Keyset::<i32>::parse(PageSize::STANDARD, Some("forged"), None).is_err());
    }
}
