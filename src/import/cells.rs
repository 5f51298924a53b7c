//! The values the import writes, in the two forms it needs them in: PostgreSQL's binary
//! `COPY` encoding, and a canonical text for the content checksum, which
//! `db::import::target_checksum` reproduces in SQL from what PostgreSQL holds.

use sha2::{Digest, Sha256};

use super::normalize::{agents_json, EpochMillis};

/// A target column's type, as far as the import writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Timestamp,
    Int4,
    Float8,
    Bool,
    /// `jsonb` holding an array of strings.
    Names,
}

/// One written column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
}

pub const fn column(name: &'static str, kind: Kind) -> Column {
    Column { name, kind }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Timestamp(EpochMillis),
    Int4(i32),
    Float8(f64),
    Bool(bool),
    Names(Vec<String>),
}

impl Cell {
    pub fn optional_text(text: Option<String>) -> Cell {
        text.map_or(Cell::Null, Cell::Text)
    }

    pub fn optional_timestamp(millis: Option<EpochMillis>) -> Cell {
        millis.map_or(Cell::Null, Cell::Timestamp)
    }
}

/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The header of a binary `COPY` stream: signature, flags, header extension length.
pub const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The trailer: a tuple of -1 fields.
pub const COPY_TRAILER: &[u8] = &[0xff, 0xff];

/// Appends one row in the binary `COPY` format.
pub fn encode_row(out: &mut Vec<u8>, cells: &[Cell]) {
    out.extend_from_slice(&(cells.len() as i16).to_be_bytes());
    for cell in cells {
        let field = |out: &mut Vec<u8>, bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
            out.extend_from_slice(bytes);
        };
        match cell {
            Cell::Null => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Cell::Text(text) => field(out, text.as_bytes()),
            Cell::Timestamp(millis) => field(out, &(millis * 1000 - POSTGRES_EPOCH_MICROS).to_be_bytes()),
            Cell::Int4(number) => field(out, &number.to_be_bytes()),
            Cell::Float8(number) => field(out, &number.to_bits().to_be_bytes()),
            Cell::Bool(flag) => field(out, &[u8::from(*flag)]),
            Cell::Names(names) => {
                // jsonb's binary form: a version byte, then the JSON text.
                let mut bytes = vec![1u8];
                bytes.extend_from_slice(agents_json(names).as_bytes());
                field(out, &bytes);
            }
        }
    }
}

/// The row's contribution to its table's checksum: the first 8 bytes of the SHA-256 of its
/// canonical text, as a signed big-endian integer. A table's checksum is the sum over its
/// rows, so it does not depend on order or on how the rows were batched.
pub fn row_digest(cells: &[Cell]) -> i64 {
    let mut canonical = String::new();
    for cell in cells {
        let value = match cell {
            Cell::Null => {
                canonical.push('-');
                continue;
            }
            Cell::Text(text) => text.clone(),
            Cell::Timestamp(millis) => millis.to_string(),
            Cell::Int4(number) => number.to_string(),
            Cell::Float8(number) => format!("{:016x}", number.to_bits()),
            Cell::Bool(flag) => flag.to_string(),
            Cell::Names(names) => agents_json(names),
        };
        canonical.push_str(&value.len().to_string());
        canonical.push(':');
        canonical.push_str(&value);
    }
    let digest = Sha256::digest(canonical.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The SQL that computes [`row_digest`]'s canonical text of one column from what PostgreSQL
/// holds.
pub fn canonical_sql(column: &Column) -> String {
    let quoted = format!("\"{}\"", column.name);
    let value = match column.kind {
        Kind::Text => quoted.clone(),
        Kind::Timestamp => format!("(extract(epoch FROM {quoted}) * 1000)::bigint::text"),
        Kind::Int4 | Kind::Bool => format!("{quoted}::text"),
        Kind::Float8 => format!("encode(float8send({quoted}), 'hex')"),
        Kind::Names => format!("{quoted}::text"),
    };
    format!("CASE WHEN {quoted} IS NULL THEN '-' ELSE octet_length({value})::text || ':' || {value} END")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_framed_as_binary_copy_wants_it() {
        let mut out = Vec::new();
        encode_row(&mut out, &[Cell::Int4(1), Cell::Null, Cell::Text("é".into()), Cell::Bool(true)]);
        assert_eq!(
            out,
            [&[0, 4][..], &[0, 0, 0, 4, 0, 0, 0, 1], &[0xff; 4], &[0, 0, 0, 2, 0xc3, 0xa9], &[0, 0, 0, 1, 1]].concat()
        );
        let mut time = Vec::new();
        encode_row(&mut time, &[Cell::Timestamp(946_684_800_001)]);
        assert_eq!(&time[6..], &1000i64.to_be_bytes(), "one millisecond after PostgreSQL's epoch");
    }

    #[test]
    fn the_digest_separates_values_and_nulls() {
        let a = row_digest(&[Cell::Text("ab".into()), Cell::Text("c".into())]);
        let b = row_digest(&[Cell::Text("a".into()), Cell::Text("bc".into())]);
        let c = row_digest(&[Cell::Text("-".into())]);
        let d = row_digest(&[Cell::Null]);
        assert!(a != b && c != d);
    }
}
