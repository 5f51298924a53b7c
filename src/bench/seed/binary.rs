//! An encoder for PostgreSQL's binary `COPY` format.
//!
//! Binary COPY skips the server's text parsing, which is most of the cost of a bulk load; the
//! price is that every value must be sent in exactly its column's type (an `int8` into an
//! `int4` column is an error, not a cast).

use std::ops::Range;

/// The fixed signature, flags and header-extension length that open a binary COPY stream.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 00:00:00 UTC).
const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;
/// `numeric` sign words.
const NUMERIC_POSITIVE: u16 = 0x0000;
const NUMERIC_NEGATIVE: u16 = 0x4000;

/// Rows encoded into one growing buffer; the caller drains it with [`CopyWriter::take`].
#[derive(Debug, Default)]
pub struct CopyWriter {
    buf: Vec<u8>,
}

impl CopyWriter {
    pub fn with_capacity(capacity: usize) -> Self {
        Self { buf: Vec::with_capacity(capacity) }
    }

    /// The stream header; sent once, before the first row.
    pub fn header(&mut self) {
        self.buf.extend_from_slice(HEADER);
    }

    /// The end-of-data marker; sent once, after the last row.
    pub fn trailer(&mut self) {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
    }

    /// Starts a row of `fields` values, which must follow in column-list order.
    pub fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    pub fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    /// `text` (and `varchar`): the UTF-8 bytes.
    pub fn text(&mut self, value: &str) {
        self.field(value.as_bytes());
    }

    pub fn opt_text(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.text(value),
            None => self.null(),
        }
    }

    /// A `text` value written in place by `write`, so large values need no buffer of their
    /// own. Returns where the value's bytes sit in [`CopyWriter::bytes`]. `write` must append
    /// valid UTF-8 without NUL bytes.
    pub fn text_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Range<usize> {
        let length_at = self.buf.len();
        self.buf.extend_from_slice(&0i32.to_be_bytes());
        let start = self.buf.len();
        write(&mut self.buf);
        let length = i32::try_from(self.buf.len() - start).expect("a field over 2 GiB");
        self.buf[length_at..start].copy_from_slice(&length.to_be_bytes());
        start..self.buf.len()
    }

    pub fn int4(&mut self, value: i32) {
        self.field(&value.to_be_bytes());
    }

    pub fn int8(&mut self, value: i64) {
        self.field(&value.to_be_bytes());
    }

    pub fn float8(&mut self, value: f64) {
        self.field(&value.to_bits().to_be_bytes());
    }

    pub fn boolean(&mut self, value: bool) {
        self.field(&[u8::from(value)]);
    }

    /// `timestamp` (without time zone) from Unix milliseconds, read as UTC.
    pub fn timestamp_ms(&mut self, unix_ms: i64) {
        self.int8(unix_ms * 1000 - PG_EPOCH_UNIX_MICROS);
    }

    pub fn opt_timestamp_ms(&mut self, unix_ms: Option<i64>) {
        match unix_ms {
            Some(unix_ms) => self.timestamp_ms(unix_ms),
            None => self.null(),
        }
    }

    /// `jsonb`: a format-version byte (1) and the JSON text.
    pub fn jsonb(&mut self, json: &str) {
        let length = i32::try_from(json.len() + 1).expect("a field over 2 GiB");
        self.buf.extend_from_slice(&length.to_be_bytes());
        self.buf.push(1);
        self.buf.extend_from_slice(json.as_bytes());
    }

    /// `numeric` holding `units` × 10^-`scale` (so cost 1.5 at scale 6 is 1_500_000 units).
    pub fn numeric(&mut self, units: i64, scale: u16) {
        let encoded = encode_numeric(units, scale);
        self.field(&encoded);
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Hands over the encoded bytes and starts a fresh buffer of the same capacity.
    pub fn take(&mut self) -> Vec<u8> {
        let capacity = self.buf.capacity();
        std::mem::replace(&mut self.buf, Vec::with_capacity(capacity))
    }

    fn field(&mut self, bytes: &[u8]) {
        let length = i32::try_from(bytes.len()).expect("a field over 2 GiB");
        self.buf.extend_from_slice(&length.to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }
}

/// The wire form of `numeric`: digit count, weight, sign and display scale (each a big-endian
/// 16-bit word), then base-10000 digits, most significant first. The weight is the power of
/// 10000 of the first digit; leading and trailing zero digits are left out.
fn encode_numeric(units: i64, scale: u16) -> Vec<u8> {
    assert!(scale <= 18, "numeric scale {scale} is out of range");
    let magnitude = u128::from(units.unsigned_abs());
    let divisor = 10u128.pow(u32::from(scale));
    let mut integer = magnitude / divisor;
    // The fraction, padded on the right to whole base-10000 digits.
    let fraction_digits = u32::from(scale).div_ceil(4);
    let mut fraction = (magnitude % divisor) * 10u128.pow(fraction_digits * 4 - u32::from(scale));

    let mut integer_digits = Vec::new();
    while integer > 0 {
        integer_digits.push((integer % 10_000) as u16);
        integer /= 10_000;
    }
    integer_digits.reverse();
    let mut fraction_part = vec![0u16; fraction_digits as usize];
    for digit in fraction_part.iter_mut().rev() {
        *digit = (fraction % 10_000) as u16;
        fraction /= 10_000;
    }

    let mut weight = integer_digits.len() as i16 - 1;
    let mut digits = integer_digits;
    digits.extend(fraction_part);
    let leading_zeros = digits.iter().take_while(|&&d| d == 0).count();
    digits.drain(..leading_zeros);
    weight -= leading_zeros as i16;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    let sign = if units < 0 && !digits.is_empty() { NUMERIC_NEGATIVE } else { NUMERIC_POSITIVE };
    if digits.is_empty() {
        weight = 0;
    }

    let mut out = Vec::with_capacity(8 + digits.len() * 2);
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&scale.to_be_bytes());
    for digit in digits {
        out.extend_from_slice(&digit.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (digit count, weight, sign, dscale, digits) decoded from the wire form.
    fn words(bytes: &[u8]) -> Vec<i32> {
        let mut words: Vec<i32> = bytes.chunks(2).map(|w| i32::from(i16::from_be_bytes([w[0], w[1]]))).collect();
        words[2] = i32::from(u16::from_be_bytes([bytes[4], bytes[5]]));
        words
    }

    #[test]
    fn numeric_matches_postgres_wire_form() {
        // Zero keeps its display scale and has no digits.
        assert_eq!(words(&encode_numeric(0, 6)), [0, 0, 0, 6]);
        // 0.000001 = 100 × 10000^-2.
        assert_eq!(words(&encode_numeric(1, 6)), [1, -2, 0, 6, 100]);
        // 1.5 = 1 + 5000 × 10000^-1.
        assert_eq!(words(&encode_numeric(1_500_000, 6)), [2, 0, 0, 6, 1, 5000]);
        // 12345.678901
        assert_eq!(words(&encode_numeric(12_345_678_901, 6)), [4, 1, 0, 6, 1, 2345, 6789, 100]);
        // 10000: one digit of weight 1, no trailing zero digits.
        assert_eq!(words(&encode_numeric(10_000_000_000, 6)), [1, 1, 0, 6, 1]);
        // -2.25, and integers at scale 0.
        assert_eq!(words(&encode_numeric(-2_250_000, 6)), [2, 0, 0x4000, 6, 2, 2500]);
        assert_eq!(words(&encode_numeric(42, 0)), [1, 0, 0, 0, 42]);
    }

    #[test]
    fn text_with_patches_the_length() {
        let mut writer = CopyWriter::default();
        let range = writer.text_with(|buf| buf.extend_from_slice("héllo".as_bytes()));
        assert_eq!(&writer.bytes()[..4], &6i32.to_be_bytes());
        assert_eq!(&writer.bytes()[range], "héllo".as_bytes());
    }

    #[test]
    fn timestamps_count_from_the_postgres_epoch() {
        let mut writer = CopyWriter::default();
        writer.timestamp_ms(946_684_800_001);
        assert_eq!(&writer.bytes()[4..], &1000i64.to_be_bytes());
    }
}
