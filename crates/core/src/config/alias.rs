//! URL matching for `WSGIScriptAlias`, with mod_alias's rules: runs of `/` in the alias match
//! runs of `/` in the URI, and a match must end on a path-segment boundary.

/// Returns the length of the URI prefix matched by `alias`, or `None`.
pub fn prefix_match(uri: &str, alias: &str) -> Option<usize> {
    let u = uri.as_bytes();
    let a = alias.as_bytes();
    let (mut ui, mut ai) = (0, 0);
    while ai < a.len() {
        if a[ai] == b'/' {
            // A run of slashes in the alias matches a non-empty run in the URI.
            if ui >= u.len() || u[ui] != b'/' {
                return None;
            }
            while ai < a.len() && a[ai] == b'/' {
                ai += 1;
            }
            while ui < u.len() && u[ui] == b'/' {
                ui += 1;
            }
        } else {
            if ui >= u.len() || u[ui] != a[ai] {
                return None;
            }
            ai += 1;
            ui += 1;
        }
    }
    // The alias must end at a segment boundary of the URI (or end with '/').
    if a.last() != Some(&b'/') && ui < u.len() && u[ui] != b'/' {
        return None;
    }
    Some(ui)
}

/// Collapses runs of '/' into one, as mod_wsgi does for SCRIPT_NAME and PATH_INFO (bytes:
/// these paths need not be UTF-8).
pub fn collapse_slashes(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut prev_slash = false;
    for &c in path {
        if c == b'/' {
            if !prev_slash {
                out.push(c);
            }
            prev_slash = true;
        } else {
            out.push(c);
            prev_slash = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_rules() {
        assert_eq!(prefix_match("/app", "/app"), Some(4));
        assert_eq!(prefix_match("/app/x", "/app"), Some(4));
        assert_eq!(prefix_match("/apple", "/app"), None);
        assert_eq!(prefix_match("//app//x", "/app/"), Some(7));
        assert_eq!(prefix_match("/anything", "/"), Some(1));
        assert_eq!(prefix_match("/", "/"), Some(1));
        assert_eq!(prefix_match("/ap", "/app"), None);
    }

    #[test]
    fn collapses() {
        assert_eq!(collapse_slashes(b"/a//b///c/"), b"/a/b/c/");
        assert_eq!(collapse_slashes(b""), b"");
        assert_eq!(collapse_slashes(b"/caf\xe9//x"), b"/caf\xe9/x");
    }
}
