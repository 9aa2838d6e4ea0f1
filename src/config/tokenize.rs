//! Argument splitting compatible with Apache's `ap_getword_conf`: words separated by white
//! space, single or double quotes group a word and a backslash escapes the quote character.

/// Splits a raw directive argument string into words.
pub fn words(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '\\' && chars.peek() == Some(&first) {
                    word.push(first);
                    chars.next();
                } else if c == first {
                    break;
                } else {
                    word.push(c);
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        out.push(word);
    }
    out
}

/// Splits `name=value` (the value may itself have been quoted: `display-name='%{GROUP}'`).
pub fn option(word: &str) -> Option<(&str, &str)> {
    let (k, v) = word.split_once('=')?;
    let v = v
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
        .unwrap_or(v);
    Some((k, v))
}

/// Parses Apache's On/Off flag (case-insensitive).
pub fn flag(word: &str) -> Option<bool> {
    if word.eq_ignore_ascii_case("on") {
        Some(true)
    } else if word.eq_ignore_ascii_case("off") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_unquotes() {
        assert_eq!(
            words("  a  'b c' \"d\\\"e\" f=g "),
            vec!["a", "b c", "d\"e", "f=g"]
        );
        assert!(words("   ").is_empty());
    }

    #[test]
    fn options_and_flags() {
        assert_eq!(
            option("display-name='%{GROUP}'"),
            Some(("display-name", "%{GROUP}"))
        );
        assert_eq!(option("a=b=c"), Some(("a", "b=c")));
        assert_eq!(option("novalue"), None);
        assert_eq!(flag("ON"), Some(true));
        assert_eq!(flag("off"), Some(false));
        assert_eq!(flag("yes"), None);
    }
}
