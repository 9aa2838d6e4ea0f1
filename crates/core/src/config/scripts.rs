//! Python scripts that are not mounted applications: the dispatch script (which picks process
//! group, application group and callable per request), the authentication, group and host
//! access scripts (Apache auth providers), and handler scripts (an Apache handler name served
//! by a script's `handle_request`). Their directives and their options, in mod_wsgi's wording.

use super::groups::validate_group_value;
use super::tokenize::{flag, option, words};

/// `WSGIDispatchScript`, `WSGIAccessScript`, `WSGIAuthUserScript`, `WSGIAuthGroupScript`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookScript {
    pub path: String,
    /// The interpreter it runs in, unexpanded (`None`: the main interpreter, as mod_wsgi).
    pub application_group: Option<String>,
}

/// `WSGIHandlerScript NAME PATH [options]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerScript {
    pub name: String,
    pub path: String,
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub pass_authorization: Option<bool>,
}

/// Which hook a [`HookScript`] directive declares (for its messages).
#[derive(Debug, Clone, Copy)]
pub enum Hook {
    Dispatch,
    Access,
    AuthUser,
    AuthGroup,
}

impl Hook {
    fn what(self) -> &'static str {
        match self {
            Hook::Dispatch => "dispatch script",
            Hook::Access => "access script",
            Hook::AuthUser => "auth user script",
            Hook::AuthGroup => "auth group script",
        }
    }
}

/// `PATH [application-group=NAME]`.
pub fn parse_hook(
    hook: Hook,
    raw: &str,
    resolve: &dyn Fn(&str) -> String,
) -> Result<HookScript, String> {
    let w = words(raw);
    let Some((path, opts)) = w.split_first() else {
        return Err(format!("Location of {} not supplied.", hook.what()));
    };
    let mut script = HookScript {
        path: resolve(path),
        application_group: None,
    };
    for o in opts {
        match option(o) {
            Some(("application-group", v)) => {
                script.application_group = Some(group(v, "application")?)
            }
            _ => {
                return Err(format!(
                    "Invalid option to WSGI {} definition. ('{o}': only application-group= is allowed)",
                    hook.what()
                ));
            }
        }
    }
    Ok(script)
}

/// `NAME PATH [process-group=] [application-group=] [pass-authorization=On|Off]`.
pub fn parse_handler(raw: &str, resolve: &dyn Fn(&str) -> String) -> Result<HandlerScript, String> {
    let w = words(raw);
    let Some(name) = w.first() else {
        return Err("Name for handler script not supplied.".into());
    };
    let Some(path) = w.get(1) else {
        return Err("Location of handler script not supplied.".into());
    };
    let mut h = HandlerScript {
        name: name.clone(),
        path: resolve(path),
        process_group: None,
        application_group: None,
        pass_authorization: None,
    };
    for o in &w[2..] {
        match option(o) {
            Some(("process-group", v)) => h.process_group = Some(group(v, "process")?),
            Some(("application-group", v)) => h.application_group = Some(group(v, "application")?),
            Some(("pass-authorization", v)) => {
                h.pass_authorization = Some(
                    flag(v).ok_or_else(|| "Invalid value for authorization flag.".to_string())?,
                )
            }
            _ => {
                return Err(format!(
                    "Invalid option to WSGI handler script definition. ('{o}')"
                ));
            }
        }
    }
    Ok(h)
}

fn group(v: &str, kind: &str) -> Result<String, String> {
    if v.is_empty() {
        return Err(format!("Invalid name for WSGI {kind} group."));
    }
    validate_group_value(v)?;
    Ok(v.to_string())
}

/// The handler scripts in force: an inner context's entries replace the outer ones of the
/// same name and keep the others (mod_wsgi overlays its handler-script tables).
pub fn merge_handlers(
    base: &Option<Vec<HandlerScript>>,
    add: &Option<Vec<HandlerScript>>,
) -> Option<Vec<HandlerScript>> {
    match (base, add) {
        (b, None) => b.clone(),
        (None, a) => a.clone(),
        (Some(b), Some(a)) => {
            let mut all: Vec<HandlerScript> = b
                .iter()
                .filter(|h| !a.iter().any(|x| x.name == h.name))
                .cloned()
                .collect();
            all.extend(a.iter().cloned());
            Some(all)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(p: &str) -> String {
        format!("/root/{p}")
    }

    #[test]
    fn hook_scripts_take_only_an_application_group() {
        let s = parse_hook(Hook::AuthUser, "auth.wsgi application-group=authers", &same).unwrap();
        assert_eq!(s.path, "/root/auth.wsgi");
        assert_eq!(s.application_group.as_deref(), Some("authers"));
        let e = parse_hook(Hook::Dispatch, "d.py process-group=x", &same).unwrap_err();
        assert!(
            e.starts_with("Invalid option to WSGI dispatch script definition"),
            "{e}"
        );
        let e = parse_hook(Hook::Access, "", &same).unwrap_err();
        assert_eq!(e, "Location of access script not supplied.");
        let e = parse_hook(Hook::AuthGroup, "g.wsgi application-group=", &same).unwrap_err();
        assert_eq!(e, "Invalid name for WSGI application group.");
    }

    #[test]
    fn handler_scripts() {
        let h = parse_handler(
            "xyz-handler h.wsgi process-group=g application-group=%{GLOBAL} pass-authorization=On",
            &same,
        )
        .unwrap();
        assert_eq!(
            (h.name.as_str(), h.path.as_str()),
            ("xyz-handler", "/root/h.wsgi")
        );
        assert_eq!(h.process_group.as_deref(), Some("g"));
        assert_eq!(h.pass_authorization, Some(true));
        assert!(
            parse_handler("", &same)
                .unwrap_err()
                .starts_with("Name for handler")
        );
        assert!(
            parse_handler("x", &same)
                .unwrap_err()
                .starts_with("Location of handler")
        );
        assert!(parse_handler("x h.wsgi pass-authorization=maybe", &same).is_err());
        assert!(parse_handler("x h.wsgi callable-object=f", &same).is_err());
    }

    #[test]
    fn inner_handler_tables_overlay_outer_ones() {
        let h = |n: &str, p: &str| HandlerScript {
            name: n.into(),
            path: p.into(),
            process_group: None,
            application_group: None,
            pass_authorization: None,
        };
        let base = Some(vec![h("a", "1"), h("b", "1")]);
        let add = Some(vec![h("b", "2")]);
        let m = merge_handlers(&base, &add).unwrap();
        assert_eq!(m.len(), 2);
        assert!(m.contains(&h("a", "1")) && m.contains(&h("b", "2")));
    }
}
