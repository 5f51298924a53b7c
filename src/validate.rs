//! Input rules shared by the handlers: text limits, file paths, languages, checksums.
//! Every failure is a 422 naming the field.

use sha2::{Digest, Sha256};

use crate::error::Error;

/// The longest message content the API takes, in characters.
pub const MESSAGE_CONTENT_CHARS: usize = 200_000;

/// A required text field: trimmed length within `min..=max` characters.
pub fn text(field: &str, value: &str, min: usize, max: usize) -> Result<(), Error> {
    let length = value.trim().chars().count();
    if length < min || value.chars().count() > max {
        return Err(Error::Unprocessable(format!("{field} must be {min} to {max} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        return Err(Error::Unprocessable(format!("{field} must not contain control characters")));
    }
    Ok(())
}

/// An e-mail address, lower-cased. Deliberately loose: one `@`, something on each side, no
/// spaces. Whether it exists is for a verification mail to find out.
pub fn email(value: &str) -> Result<String, Error> {
    let email = value.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split('@').count() == 2
        && email.split('@').all(|part| !part.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err(Error::Unprocessable("email is not a valid e-mail address".into()))
    }
}

/// A file path: relative, already normalised (no empty, `.` or `..` segments), at most 255
/// bytes, without control characters or backslashes.
pub fn file_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > 255 {
        return Err("path must be 1 to 255 bytes".into());
    }
    if path.starts_with('/') {
        return Err("path must be relative".into());
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Err("path must not contain control characters or backslashes".into());
    }
    if path.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..") {
        return Err("path must be normalised: no empty, '.' or '..' segments".into());
    }
    Ok(())
}

/// The language of a file, from its extension.
pub fn language_of(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "html" | "htm" => "html",
        "css" => "css",
        "scss" | "sass" => "scss",
        "js" | "mjs" | "cjs" => "javascript",
        "jsx" => "javascript",
        "ts" | "mts" | "cts" => "typescript",
        "tsx" => "typescript",
        "json" => "json",
        "md" | "markdown" => "markdown",
        "py" => "python",
        "rs" => "rust",
        "go" => "go",
        "java" => "java",
        "rb" => "ruby",
        "php" => "php",
        "sql" => "sql",
        "sh" | "bash" => "shell",
        "yml" | "yaml" => "yaml",
        "toml" => "toml",
        "xml" => "xml",
        "svg" => "svg",
        "vue" => "vue",
        "svelte" => "svelte",
        "txt" => "plaintext",
        _ => "plaintext",
    }
}

/// The hex SHA-256 of a file's content, as stored in `ProjectFile.checksum`.
pub fn checksum(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_paths_are_refused() {
        for path in [
            "",
            "/etc/passwd",
            "../secret",
            "a/../../b",
            "a//b",
            "./a",
            "a/",
            "a\\b",
            "a\u{0}b",
            "a\nb",
            &"x".repeat(256),
        ] {
            assert!(file_path(path).is_err(), "{path:?} should be refused");
        }
        for path in ["index.html", "src/components/App.tsx", ".env.example", "a b/c-d_e.f", "ünïcode/файл.js"] {
            assert!(file_path(path).is_ok(), "{path:?} should pass");
        }
    }

    #[test]
    fn languages_follow_the_extension() {
        assert_eq!(language_of("src/App.tsx"), "typescript");
        assert_eq!(language_of("INDEX.HTML"), "html");
        assert_eq!(language_of("Makefile"), "plaintext");
    }

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(email("  Owner@Example.COM ").unwrap(), "owner@example.com");
        for bad in ["", "no-at", "two@@ats", "@example.com", "a@", "sp ace@example.com"] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn text_limits_count_characters() {
        assert!(text("name", "é", 1, 1).is_ok());
        assert!(text("name", "   ", 1, 10).is_err());
        assert!(text("name", "bell\u{7}", 1, 10).is_err());
    }
}
