//! URL to script: `WSGIScriptAlias` / `WSGIScriptAliasMatch` (translate_name). The first
//! match in declaration order wins (the virtual host's aliases before the main server's),
//! exactly as mod_wsgi; the alias's options travel to the handler as request notes.

use crate::conf::ServerConf;
use crate::notes;
use rwsgi_apache::Request;
use rwsgi_apache::hooks::Handled;
use rwsgi_core::config::{AliasPattern, alias};
use std::ffi::CStr;

/// The handler names mod_wsgi serves.
pub const HANDLER: &CStr = c"wsgi-script";
pub const HANDLER_ALT: &str = "application/x-httpd-wsgi";

pub fn translate_name(req: Request<'_>) -> Handled {
    let uri = req.uri();
    if !uri.starts_with('/') {
        return Handled::Declined;
    }
    let conf: &ServerConf = req.server_config();
    for (i, a) in conf.config.aliases.iter().enumerate() {
        match (&a.pattern, conf.regexes.get(i).and_then(|x| x.as_ref())) {
            (AliasPattern::Prefix(p), _) => match alias::prefix_match(&uri, p) {
                Some(_) if p == "/" => map_to(&req, &a.target, &uri),
                Some(n) => map_to(&req, &a.target, &uri[n..]),
                None => continue,
            },
            (AliasPattern::Regex(_), Some(re)) => match re.matches(&uri) {
                Some((end, groups)) => map_to(&req, &substitute(&a.target, &groups), &uri[end..]),
                None => continue,
            },
            (AliasPattern::Regex(_), None) => continue,
        }
        req.set_handler(HANDLER);
        req.set_note(notes::ALIAS_FORCED_TYPE, "wsgi-script");
        let o = &a.options;
        for (key, val) in [
            (notes::PROCESS_GROUP, &o.process_group),
            (notes::APPLICATION_GROUP, &o.application_group),
            (notes::CALLABLE_OBJECT, &o.callable_object),
        ] {
            if let Some(v) = val {
                req.set_note(key, v);
            }
        }
        if let Some(p) = o.pass_authorization {
            req.set_note(notes::PASS_AUTHORIZATION, notes::flag(p));
        }
        return Handled::Done;
    }
    Handled::Declined
}

/// Maps the request to `target` with `rest`, the URL after what matched. A target that is a
/// file takes `rest` as path info and its stat is the directory walk's (one system call where
/// the walk would make six for a script four directories deep); anything else gets `rest`
/// appended to the filename (what mod_wsgi does) for Apache's walk to sort out: a directory
/// of scripts, a target with more path after the script (`WSGIScriptAliasMatch ^/(a|b)
/// /srv/app.wsgi/$1`), a missing script.
fn map_to(req: &Request<'_>, target: &str, rest: &str) {
    if !(rest.starts_with('/') && req.map_to_file(target, rest)) {
        req.set_filename_joined(target, rest);
    }
}

/// `$0`..`$9` substitution as ap_pregsub does (`\$` escapes a dollar).
fn substitute(target: &str, groups: &[Option<String>]) -> String {
    let mut out = String::new();
    let mut it = target.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' if matches!(it.peek(), Some('$') | Some('\\')) => {
                out.push(it.next().unwrap_or('\\'))
            }
            '$' if it.peek().is_some_and(|d| d.is_ascii_digit()) => {
                let d = it.next().and_then(|d| d.to_digit(10)).unwrap_or(0) as usize;
                if let Some(Some(g)) = groups.get(d) {
                    out.push_str(g);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::substitute;

    #[test]
    fn dollar_substitution() {
        let g = vec![Some("/match/env".to_string()), Some("env".to_string())];
        assert_eq!(substitute("/app/$1.wsgi", &g), "/app/env.wsgi");
        assert_eq!(substitute("/app/\\$1", &g), "/app/$1");
        assert_eq!(substitute("/app/$5", &g), "/app/");
    }
}
