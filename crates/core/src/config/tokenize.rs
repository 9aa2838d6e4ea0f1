//! Argument splitting compatible with Apache's `ap_getword_conf`: words separated by white
//! space, single or double quotes group a word and a backslash escapes the quote character.

/// White space as C's `isspace` in the "C" locale (what Apache's `apr_isspace` tests).
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

fn trim_space(s: &str) -> &str {
    s.trim_start_matches(is_space)
}

/// Splits a raw directive argument string into words.
pub fn words(raw: &str) -> Vec<String> {
    let mut line = raw;
    let mut out = Vec::new();
    while !trim_space(line).is_empty() {
        out.push(getword_conf(&mut line));
    }
    out
}

/// Reads one word from the front of `line` exactly as Apache's `ap_getword_conf` does and
/// advances `line` past it and the white space that follows. A word that starts with a single
/// or double quote runs to the matching quote (a backslash escapes that quote or a backslash);
/// otherwise it runs to the next white space (a doubled backslash stands for one). Returns ""
/// at the end of the line.
pub fn getword_conf(line: &mut &str) -> String {
    let s = trim_space(line);
    let Some(first) = s.chars().next() else {
        *line = s;
        return String::new();
    };
    let quote = (first == '"' || first == '\'').then_some(first);
    let body = if quote.is_some() { &s[1..] } else { s };
    let mut word = String::new();
    let mut chars = body.char_indices().peekable();
    let mut end = body.len();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some(q) if c == q => {
                end = i + c.len_utf8();
                break;
            }
            None if is_space(c) => {
                end = i;
                break;
            }
            _ => {}
        }
        let next = chars.peek().map(|&(_, n)| n);
        if c == '\\' && (next == Some('\\') || (quote.is_some() && next == quote)) {
            word.push(next.unwrap_or('\\'));
            chars.next();
        } else {
            word.push(c);
        }
    }
    *line = trim_space(&body[end..]);
    word
}

/// Reads one `name=value` option from the front of `line` the way mod_wsgi's
/// `wsgi_parse_option` does: the name runs to `=` (no white space), the value is read with
/// [`getword_conf`], so `display-name='my app'` keeps its space. `Err` carries the word that
/// is not an option.
pub fn next_option(line: &mut &str) -> Result<(String, String), String> {
    let s = trim_space(line);
    let name_end = s.find(|c: char| c == '=' || is_space(c)).unwrap_or(s.len());
    if name_end == 0 || !s[name_end..].starts_with('=') {
        let mut rest = s;
        let word = getword_conf(&mut rest);
        *line = rest;
        return Err(word);
    }
    let name = s[..name_end].to_string();
    // As in mod_wsgi, `name= value` takes the next word as the value.
    let mut rest = &s[name_end + 1..];
    let value = getword_conf(&mut rest);
    *line = rest;
    Ok((name, value))
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
    fn getword_conf_like_apache() {
        // A doubled backslash is one backslash, quoted or not; `\'` only inside single quotes.
        assert_eq!(
            words(r"a\\b 'c\\d' 'e\'f' g\h"),
            vec![r"a\b", r"c\d", "e'f", r"g\h"]
        );
        // Text right after a closing quote starts a new word; an unclosed quote runs to the end.
        assert_eq!(words("'a b'c \"d e"), vec!["a b", "c", "d e"]);
        assert_eq!(words("\t\x0bx\r\n"), vec!["x"]);
        let mut line = "  first  second";
        assert_eq!(getword_conf(&mut line), "first");
        assert_eq!(line, "second");
        assert_eq!(getword_conf(&mut line), "second");
        assert_eq!(getword_conf(&mut line), "");
    }

    #[test]
    fn options_like_mod_wsgi() {
        let mut line = "display-name='my app' threads=5 python-path=\"/a b:/c\" x= y";
        assert_eq!(
            next_option(&mut line),
            Ok(("display-name".into(), "my app".into()))
        );
        assert_eq!(next_option(&mut line), Ok(("threads".into(), "5".into())));
        assert_eq!(
            next_option(&mut line),
            Ok(("python-path".into(), "/a b:/c".into()))
        );
        // mod_wsgi reads the value with ap_getword_conf, which skips leading white space.
        assert_eq!(next_option(&mut line), Ok(("x".into(), "y".into())));
        assert_eq!(line, "");
        let mut line = "novalue threads=1";
        assert_eq!(next_option(&mut line), Err("novalue".into()));
        assert_eq!(line, "threads=1");
        // (`'threads=5'` is the option "'threads", refused later as unknown.)
        for bad in ["=5", "threads =5"] {
            let mut line = bad;
            assert!(next_option(&mut line).is_err(), "{bad}");
        }
        let mut line = "empty=";
        assert_eq!(next_option(&mut line), Ok(("empty".into(), "".into())));
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
