//! The explain's statement check: one `SELECT` (or `WITH … SELECT`), told apart by a light
//! scanner that knows quotes, comments and dollar quotes, with `$n` inlined as literals.

use serde_json::Value;

use crate::error::{Error, Result};

/// Accepts exactly one `SELECT` or `WITH … SELECT`, and inlines `$1`, `$2`… as literals.
/// Only the first rule is this check's to keep: the read-only transaction refuses writes
/// whatever the text, and PostgreSQL refuses a second command in one prepared statement.
pub fn check_statement(statement: &str, params: &[Value]) -> Result<String> {
    let refuse = |why: &str| Error::Unprocessable(why.to_owned());
    let tokens = scan(statement).map_err(refuse)?;
    one_select(&tokens).map_err(refuse)?;
    let mut inlined = String::with_capacity(statement.len());
    for token in &tokens {
        match token {
            Token::Semicolon => {}
            Token::Parameter(number) => {
                let value = number.checked_sub(1).and_then(|index| params.get(index));
                let Some(value) = value else {
                    return Err(refuse(&format!("${number} has no value in params")));
                };
                inlined.push_str(&literal(value)?);
            }
            other => inlined.push_str(other.text()),
        }
    }
    Ok(inlined)
}

/// Whether a statement is one SELECT (or WITH … SELECT), placeholders allowed.
pub(super) fn is_select(statement: &str) -> bool {
    scan(statement).is_ok_and(|tokens| one_select(&tokens).is_ok())
}

/// The rules of [`check_statement`] on scanned text: why it is not one plain SELECT.
fn one_select(tokens: &[Token<'_>]) -> std::result::Result<(), &'static str> {
    let mut code = tokens.iter().filter(|token| !matches!(token, Token::Comment(_) | Token::Space(_)));
    let first = code.clone().next().and_then(|token| match token {
        Token::Word(word) => Some(word.to_ascii_lowercase()),
        _ => None,
    });
    if !matches!(first.as_deref(), Some("select" | "with")) {
        return Err("only a SELECT or a WITH … SELECT can be explained");
    }
    // One statement: nothing but comments, space and semicolons after the first semicolon.
    let after_semicolon = tokens.iter().skip_while(|token| !matches!(token, Token::Semicolon));
    if after_semicolon.clone().any(|token| !matches!(token, Token::Comment(_) | Token::Space(_) | Token::Semicolon)) {
        return Err("exactly one statement can be explained");
    }
    if code.any(|token| matches!(token, Token::Word(word) if word.eq_ignore_ascii_case("into"))) {
        return Err("SELECT … INTO creates a table: it cannot be explained here");
    }
    Ok(())
}

/// A JSON value as an SQL literal. Strings are quoted untyped, so the planner infers their
/// type from where they stand, as it would for a parameter.
fn literal(value: &Value) -> Result<String> {
    Ok(match value {
        Value::Null => "NULL".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        // In parentheses: `1-$1` with -5 must not become the comment `1--5`.
        Value::Number(number) => format!("({number})"),
        // standard_conforming_strings is on (the default since 9.1): only quotes need doubling.
        Value::String(text) if text.contains('\0') => {
            return Err(Error::Unprocessable("a parameter holds a NUL character".into()));
        }
        Value::String(text) => format!("'{}'", text.replace('\'', "''")),
        Value::Array(_) | Value::Object(_) => {
            format!("'{}'", value.to_string().replace('\'', "''"))
        }
    })
}

/// A piece of SQL text, as far as this check needs to tell them apart.
#[derive(Debug, PartialEq)]
pub(super) enum Token<'a> {
    Word(&'a str),
    /// A quoted string, quoted identifier or dollar-quoted string, whole.
    Quoted(&'a str),
    Comment(&'a str),
    Space(&'a str),
    Parameter(usize),
    Semicolon,
    Other(&'a str),
}

impl<'a> Token<'a> {
    fn text(&self) -> &'a str {
        match self {
            Token::Word(text)
            | Token::Quoted(text)
            | Token::Comment(text)
            | Token::Space(text)
            | Token::Other(text) => text,
            Token::Parameter(_) | Token::Semicolon => "",
        }
    }
}

/// Splits SQL into tokens, keeping quoted text and comments whole so that a `;` or `$1`
/// inside them is not mistaken for one outside.
pub(super) fn scan(sql: &str) -> std::result::Result<Vec<Token<'_>>, &'static str> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let byte = bytes[at];
        let token = match byte {
            b'\'' | b'"' => {
                at = quote_end(bytes, at, false)?;
                Token::Quoted(&sql[start..at])
            }
            b'-' if bytes.get(at + 1) == Some(&b'-') => {
                at = sql[at..].find('\n').map_or(bytes.len(), |end| at + end);
                Token::Comment(&sql[start..at])
            }
            b'/' if bytes.get(at + 1) == Some(&b'*') => {
                // PostgreSQL's block comments nest.
                let mut depth = 0;
                loop {
                    match (bytes.get(at), bytes.get(at + 1)) {
                        (None, _) => return Err("an unterminated comment"),
                        (Some(b'/'), Some(b'*')) => {
                            depth += 1;
                            at += 2;
                        }
                        (Some(b'*'), Some(b'/')) => {
                            depth -= 1;
                            at += 2;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => at += 1,
                    }
                }
                Token::Comment(&sql[start..at])
            }
            b'$' if bytes.get(at + 1).is_some_and(u8::is_ascii_digit) => {
                at += 1;
                while bytes.get(at).is_some_and(u8::is_ascii_digit) {
                    at += 1;
                }
                Token::Parameter(sql[start + 1..at].parse().map_err(|_| "a parameter number too large")?)
            }
            b'$' => {
                // A dollar quote: $tag$ … $tag$, the tag possibly empty.
                let tag_end = sql[at + 1..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map(|end| at + 1 + end)
                    .filter(|&end| bytes.get(end) == Some(&b'$'));
                match tag_end {
                    Some(end) => {
                        let tag = &sql[start..=end];
                        let close = sql[end + 1..].find(tag).ok_or("an unterminated dollar quote")?;
                        at = end + 1 + close + tag.len();
                        Token::Quoted(&sql[start..at])
                    }
                    None => {
                        at += 1;
                        Token::Other(&sql[start..at])
                    }
                }
            }
            b';' => {
                at += 1;
                Token::Semicolon
            }
            _ if byte.is_ascii_whitespace() => {
                while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
                    at += 1;
                }
                Token::Space(&sql[start..at])
            }
            // An escape string, E'…': a backslash escapes the character after it.
            b'E' | b'e' if bytes.get(at + 1) == Some(&b'\'') => {
                at = quote_end(bytes, at + 1, true)?;
                Token::Quoted(&sql[start..at])
            }
            _ if byte.is_ascii_alphabetic() || byte == b'_' || byte >= 0x80 => {
                while bytes.get(at).is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80) {
                    at += 1;
                }
                Token::Word(&sql[start..at])
            }
            _ => {
                at += sql[at..].chars().next().map_or(1, char::len_utf8);
                Token::Other(&sql[start..at])
            }
        };
        tokens.push(token);
    }
    Ok(tokens)
}

/// Where the quoted text opening at `at` (a `'` or `"`) ends, just past its closing quote. A
/// doubled quote is one quote inside; with `backslash_escapes` (an `E'…'` string), so is
/// a backslash and the character after it.
fn quote_end(bytes: &[u8], at: usize, backslash_escapes: bool) -> std::result::Result<usize, &'static str> {
    let quote = bytes[at];
    let mut at = at + 1;
    loop {
        match bytes.get(at) {
            None => return Err("an unterminated quote"),
            Some(b'\\') if backslash_escapes => at += 2,
            Some(&b) if b == quote && bytes.get(at + 1) == Some(&quote) => at += 2,
            Some(&b) if b == quote => return Ok(at + 1),
            Some(_) => at += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    #[test]
    fn one_select_passes_with_its_parameters_inlined() {
        let checked = check_statement("SELECT * FROM \"User\" WHERE email = $1 AND n > $2;", &[json!("o'k"), json!(3)]);
        assert_eq!(checked.unwrap(), "SELECT * FROM \"User\" WHERE email = 'o''k' AND n > (3)");
        assert_eq!(check_statement("SELECT 1-$1", &[json!(-5)]).unwrap(), "SELECT 1-(-5)");
        // In an escape string, \' is a quote inside it: the $1 after it is still text.
        assert_eq!(check_statement(r"SELECT E'\' $1 '", &[]).unwrap(), r"SELECT E'\' $1 '");
        assert!(check_statement(r"SELECT E'\''; DROP TABLE x", &[]).is_err());
        let with = check_statement("  -- why\n WITH x AS (SELECT 1) SELECT * FROM x", &[]).unwrap();
        assert!(with.contains("WITH x"));
        // A `;` or `$1` inside quotes or comments is text, not syntax.
        let quoted = check_statement("SELECT ';DROP TABLE x', $$ $1 ; $$ /* ; */", &[]).unwrap();
        assert_eq!(quoted, "SELECT ';DROP TABLE x', $$ $1 ; $$ /* ; */");
    }

    #[test]
    fn anything_but_one_select_is_refused() {
        for refused in [
            "SELECT 1; DROP TABLE \"User\"",
            "select 1;select 2",
            "DELETE FROM \"User\"",
            "SET statement_timeout = 0",
            "COPY \"User\" TO STDOUT",
            "EXPLAIN SELECT 1",
            "SELECT * INTO copy FROM \"User\"",
            "SELECT 'unterminated",
            "SELECT $1",
            "",
        ] {
            assert!(check_statement(refused, &[]).is_err(), "{refused}");
        }
    }

    #[test]
    fn the_advisor_takes_single_selects_only() {
        assert!(is_select("SELECT * FROM t WHERE a = $1"));
        assert!(!is_select("UPDATE t SET a = $1"));
        assert!(!is_select("SELECT 1; SELECT 2"));
    }
}
