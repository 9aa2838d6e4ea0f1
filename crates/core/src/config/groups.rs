//! Application and process groups: what `%{GLOBAL}` stands for, and the expansion of `%{...}`
//! values of WSGIApplicationGroup / WSGIProcessGroup, as mod_wsgi does.

/// `%{GLOBAL}`: as an application group, the main interpreter; as a process group, embedded
/// mode.
pub const GLOBAL: &str = "%{GLOBAL}";

/// The name of the interpreter an application group runs in ("" is the main interpreter).
pub fn interpreter_of(group: &str) -> &str {
    if group == GLOBAL { "" } else { group }
}

/// Where a request runs, from its (expanded) process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessGroup<'a> {
    /// In the Apache child (no group, or `%{GLOBAL}`).
    Embedded,
    Daemon(&'a str),
}

impl<'a> ProcessGroup<'a> {
    pub fn of(name: &'a str) -> ProcessGroup<'a> {
        if name.is_empty() || name == GLOBAL {
            ProcessGroup::Embedded
        } else {
            ProcessGroup::Daemon(name)
        }
    }
}

/// What a request contributes to a `%{...}` expansion.
pub struct ExpandContext<'a> {
    /// The virtual host's ServerName.
    pub server_hostname: &'a str,
    pub server_port: u16,
    /// Host header (or ServerName when absent).
    pub request_host: &'a str,
    /// SCRIPT_NAME after slash collapsing.
    pub script_name: &'a str,
    /// Lower-case paths (WSGICaseSensitivity Off).
    pub case_insensitive: bool,
}

fn with_port(host: &str, port: u16) -> String {
    if port == 80 || port == 443 || port == 0 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

/// Expands an application-group value. `env` looks a name up in the request's notes,
/// subprocess_env and finally the process environment.
pub fn expand_application_group(
    value: &str,
    ctx: &ExpandContext<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> String {
    expand(value, ctx, env, true)
}

/// The group a value names outright, with nothing of the request to fill in: a plain name,
/// or `%{GLOBAL}` (""). Callers skip building an [`ExpandContext`] for these.
pub fn literal(value: &str) -> Option<&str> {
    if !value.starts_with('%') {
        Some(value)
    } else if value == GLOBAL {
        Some("")
    } else {
        None
    }
}

fn expand(
    value: &str,
    ctx: &ExpandContext<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    allow_reexpand: bool,
) -> String {
    if let Some(name) = literal(value) {
        return name.to_string();
    }
    match value {
        "%{SERVER}" => with_port(ctx.server_hostname, ctx.server_port),
        "%{HOST}" => with_port(ctx.request_host, ctx.server_port),
        "%{RESOURCE}" => {
            let name = if ctx.case_insensitive {
                ctx.script_name.to_lowercase()
            } else {
                ctx.script_name.to_string()
            };
            format!(
                "{}|{}",
                with_port(ctx.server_hostname, ctx.server_port),
                name
            )
        }
        _ => {
            if let Some(var) = value
                .strip_prefix("%{ENV:")
                .and_then(|v| v.strip_suffix('}'))
            {
                match env(var) {
                    Some(v) if allow_reexpand && v.starts_with('%') && !v.starts_with("%{ENV:") => {
                        expand(&v, ctx, env, false)
                    }
                    Some(v) => v,
                    None => String::new(),
                }
            } else {
                value.to_string()
            }
        }
    }
}

/// Checks a WSGIApplicationGroup / application-group= value at configuration time.
pub fn validate_group_value(value: &str) -> Result<(), String> {
    if !value.starts_with("%{") {
        return Ok(());
    }
    match value {
        "%{GLOBAL}" | "%{SERVER}" | "%{RESOURCE}" | "%{HOST}" => Ok(()),
        v if v.starts_with("%{ENV:") && v.ends_with('}') && v.len() > 7 => Ok(()),
        v => Err(format!(
            "Invalid group expansion '{v}'; expected %{{GLOBAL}}, %{{SERVER}}, %{{RESOURCE}}, %{{HOST}} or %{{ENV:name}}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ExpandContext<'static> {
        ExpandContext {
            server_hostname: "localhost",
            server_port: 8080,
            request_host: "example.org",
            script_name: "/App",
            case_insensitive: false,
        }
    }

    #[test]
    fn expansions() {
        let none = |_: &str| None;
        assert_eq!(expand_application_group("%{GLOBAL}", &ctx(), &none), "");
        assert_eq!(
            expand_application_group("%{SERVER}", &ctx(), &none),
            "localhost:8080"
        );
        assert_eq!(
            expand_application_group("%{RESOURCE}", &ctx(), &none),
            "localhost:8080|/App"
        );
        assert_eq!(
            expand_application_group("%{HOST}", &ctx(), &none),
            "example.org:8080"
        );
        assert_eq!(
            expand_application_group("mygroup", &ctx(), &none),
            "mygroup"
        );
        let env = |k: &str| (k == "G").then(|| "%{SERVER}".to_string());
        assert_eq!(
            expand_application_group("%{ENV:G}", &ctx(), &env),
            "localhost:8080"
        );
        assert_eq!(expand_application_group("%{ENV:MISSING}", &ctx(), &env), "");
        let mut c = ctx();
        c.server_port = 80;
        c.case_insensitive = true;
        assert_eq!(
            expand_application_group("%{RESOURCE}", &c, &none),
            "localhost|/app"
        );
    }

    #[test]
    fn literal_values_need_nothing_of_the_request() {
        assert_eq!(literal("mygroup"), Some("mygroup"));
        assert_eq!(literal(""), Some(""));
        assert_eq!(literal("%{GLOBAL}"), Some(""));
        for computed in [
            "%{SERVER}",
            "%{HOST}",
            "%{RESOURCE}",
            "%{ENV:G}",
            "%{global}",
        ] {
            assert_eq!(literal(computed), None, "{computed}");
        }
    }

    #[test]
    fn validation() {
        assert!(validate_group_value("%{GLOBAL}").is_ok());
        assert!(validate_group_value("%{ENV:X}").is_ok());
        assert!(validate_group_value("%{BOGUS}").is_err());
        assert!(validate_group_value("plain").is_ok());
    }
}
