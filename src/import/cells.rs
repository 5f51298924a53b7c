//! The values the import writes, in the two forms it needs them in: PostgreSQL's binary
//! `COPY` encoding, and a canonical text per value for the content checksum, which
//! `db::import::target_checksum` hashes again in SQL from what PostgreSQL holds.

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
    Int8(i64),
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
            Cell::Int8(number) => field(out, &number.to_be_bytes()),
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

/// The row's contribution to its table's checksum: the XOR of its values' hashes, each
/// PostgreSQL's `hashtextextended` of the value's canonical text, seeded with the column's
/// position (and a NULL hashed apart from every text). A table's checksum is the sum over its
/// rows, so it does not depend on order or on how the rows were batched. The hash is
/// PostgreSQL's own so that the target side costs one cheap function call per value.
pub fn row_digest(cells: &[Cell]) -> i64 {
    let mut digest = 0u64;
    let mut text = String::new();
    for (position, cell) in cells.iter().enumerate() {
        let (value_seed, null_seed) = seeds(position);
        text.clear();
        let bytes = match cell {
            Cell::Null => {
                digest ^= hash_bytes_extended(b"", null_seed as u64);
                continue;
            }
            Cell::Text(value) => value.as_bytes(),
            Cell::Timestamp(millis) => write_text(&mut text, millis),
            Cell::Int4(number) => write_text(&mut text, number),
            Cell::Int8(number) => write_text(&mut text, number),
            Cell::Float8(number) => write_text(&mut text, format_args!("{:016x}", number.to_bits())),
            Cell::Bool(flag) => write_text(&mut text, flag),
            Cell::Names(names) => {
                text = agents_json(names);
                text.as_bytes()
            }
        };
        digest ^= hash_bytes_extended(bytes, value_seed as u64);
    }
    digest as i64
}

fn write_text(buffer: &mut String, value: impl std::fmt::Display) -> &[u8] {
    use std::fmt::Write;
    write!(buffer, "{value}").expect("writing to a String");
    buffer.as_bytes()
}

/// The seeds of the column at `position`: one for its values, one for NULL.
fn seeds(position: usize) -> (i64, i64) {
    let position = position as i64 + 1;
    (position, -position)
}

/// The SQL of one column's term in [`row_digest`], from what PostgreSQL holds; the terms of
/// a row are joined with `#` (XOR).
pub fn digest_term_sql(position: usize, column: &Column) -> String {
    let quoted = format!("\"{}\"", column.name);
    let value = match column.kind {
        Kind::Text => quoted.clone(),
        Kind::Timestamp => format!("(extract(epoch FROM {quoted}) * 1000)::bigint::text"),
        Kind::Int4 | Kind::Bool => format!("{quoted}::text"),
        Kind::Float8 => format!("encode(float8send({quoted}), 'hex')"),
        Kind::Names => format!("{quoted}::text"),
    };
    let (value_seed, null_seed) = seeds(position);
    format!("coalesce(hashtextextended({value}, {value_seed}), hashtextextended('', {null_seed}))")
}

/// PostgreSQL's `hash_bytes_extended` (Bob Jenkins's lookup3, in src/common/hashfn.c), which
/// `hashtextextended` applies to a text's bytes under a deterministic collation. Words are
/// read little-endian, as PostgreSQL does on the little-endian machines it runs on here; a
/// big-endian server would hash differently, and the import would report a mismatch.
pub fn hash_bytes_extended(key: &[u8], seed: u64) -> u64 {
    let initial = 0x9e37_79b9u32.wrapping_add(key.len() as u32).wrapping_add(3_923_095);
    let (mut a, mut b, mut c) = (initial, initial, initial);
    if seed != 0 {
        a = a.wrapping_add((seed >> 32) as u32);
        b = b.wrapping_add(seed as u32);
        mix(&mut a, &mut b, &mut c);
    }
    let mut chunks = key.chunks_exact(12);
    for chunk in &mut chunks {
        let word = |at: usize| u32::from_le_bytes(chunk[at..at + 4].try_into().expect("4 bytes"));
        a = a.wrapping_add(word(0));
        b = b.wrapping_add(word(4));
        c = c.wrapping_add(word(8));
        mix(&mut a, &mut b, &mut c);
    }
    // The last 0..=11 bytes; the lowest byte of `c` is left for the length.
    for (at, &byte) in chunks.remainder().iter().enumerate() {
        let byte = u32::from(byte);
        match at {
            0..=3 => a = a.wrapping_add(byte << (8 * at)),
            4..=7 => b = b.wrapping_add(byte << (8 * (at - 4))),
            _ => c = c.wrapping_add(byte << (8 * (at - 7))),
        }
    }
    finish(&mut a, &mut b, &mut c);
    (u64::from(b) << 32) | u64::from(c)
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn finish(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
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
    fn the_digest_separates_values_columns_and_nulls() {
        let a = row_digest(&[Cell::Text("ab".into()), Cell::Text("c".into())]);
        let b = row_digest(&[Cell::Text("a".into()), Cell::Text("bc".into())]);
        let swapped = row_digest(&[Cell::Text("c".into()), Cell::Text("ab".into())]);
        let empty = row_digest(&[Cell::Text(String::new())]);
        let null = row_digest(&[Cell::Null]);
        assert!(a != b && a != swapped && empty != null);
    }

    #[test]
    fn the_hash_is_postgresqls_hashtextextended() {
        // Each value as PostgreSQL 15 computed it, covering the seeds and every tail length.
        let expected: [(&str, i64, i64); 7] = [
            ("", 1, -150071773020461347),
            ("abc", 7, 1967049030278966041),
            ("a 13-byte str", 42, -693342221387728650),
            (&"x".repeat(100), 0, -6927006773748011226),
            ("é", -3, 5569804387622585514),
            ("12345678", 2, -7743278501740319665),
            ("12345678901", 5, -6753957519839796365),
        ];
        for (text, seed, hash) in expected {
            assert_eq!(hash_bytes_extended(text.as_bytes(), seed as u64) as i64, hash, "{text:?} seeded {seed}");
        }
    }
}
