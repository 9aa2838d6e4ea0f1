//! The hooks Apache calls: configuration done (post_config), a child starts (child_init), a
//! URL is mapped (translate_name) and a request is served (handler).

use super::bindings as b;
use super::conf::{ServerConf, server_conf, server_conf_mut};
use super::request::Request;
use crate::config::{AliasPattern, ServerConfig, alias};
use std::ffi::{CStr, CString, c_void};

const OK: i32 = b::OK;
const DECLINED: i32 = b::DECLINED;
const SERVER_ERROR: i32 = b::HTTP_INTERNAL_SERVER_ERROR;

/// The handler names mod_wsgi serves.
pub const HANDLER: &CStr = c"wsgi-script";
const HANDLER_ALT: &str = "application/x-httpd-wsgi";

crate::entry! {
    /// A reading of the configuration begins (at start-up and on every restart, before any
    /// directive is processed).
    pub(crate) unsafe extern "C" fn pre_config(
        _pconf: *mut b::apr_pool_t,
        _plog: *mut b::apr_pool_t,
        _ptemp: *mut b::apr_pool_t,
    ) -> i32 [on panic: SERVER_ERROR] {
        super::commands::forget_group_names();
        OK
    }
}

crate::entry! {
    pub(crate) unsafe extern "C" fn post_config(
        pconf: *mut b::apr_pool_t,
        _plog: *mut b::apr_pool_t,
        _ptemp: *mut b::apr_pool_t,
        s: *mut b::server_rec,
    ) -> i32 [on panic: SERVER_ERROR] {
        let servers = distinct_configs(s);
        if let Err(e) = crate::embedded::configure(&servers) {
            super::log::server(super::log::Level::Crit, &format!("rwsgi: {e}"));
            return SERVER_ERROR;
        }
        let banner = CString::new(crate::embedded::version_component()).unwrap_or_default();
        // SAFETY: the component string is copied by Apache into pconf.
        unsafe { b::ap_add_version_component(pconf, banner.as_ptr()) };
        if super::daemons::is_first_pass(s) {
            return OK;
        }
        // SAFETY: the main server record is complete after configuration.
        let level = unsafe { super::log::module_level(s) };
        crate::daemon::LOG_LEVEL.store(level, std::sync::atomic::Ordering::Relaxed);
        match daemon_specs(pconf, &servers) {
            Ok(specs) if specs.is_empty() => OK,
            Ok(mut specs) => {
                for spec in &mut specs {
                    spec.secret = super::daemons::stable_secret(
                        s,
                        &spec.name,
                        std::mem::take(&mut spec.secret),
                    );
                }
                let started = super::daemons::daemon_program().and_then(|program| {
                    let deaths = super::daemons::death_table(s)
                        .map_err(|e| format!("cannot map the daemon death table: {e}"))?;
                    crate::daemon::groups::start(specs, program, deaths, level)
                });
                match started {
                    Ok(generation) => {
                        super::daemons::watch(pconf, s, generation);
                        OK
                    }
                    Err(e) => {
                        super::log::server(super::log::Level::Crit, &format!("rwsgi: {e}"));
                        SERVER_ERROR
                    }
                }
            }
            Err(e) => {
                super::log::server(super::log::Level::Crit, &format!("rwsgi: {e}"));
                SERVER_ERROR
            }
        }
    }
}

/// Our configuration record of every server, each once, the main server's first, with the
/// scope of its daemon groups set (final only now: ServerName may follow WSGIDaemonProcess).
///
/// A virtual host with no directive of ours has no record of its own: Apache gives it the
/// main server's (the same pointer, see merge_server_configs in server/config.c). Walking the
/// server list naively would see the main server's groups twice (and scope them to that
/// virtual host): Debian's 000-default.conf next to a server-level WSGIDaemonProcess did not
/// start.
fn distinct_configs<'a>(s: *mut b::server_rec) -> Vec<&'a ServerConfig> {
    let mut seen: Vec<*const ServerConf> = Vec::new();
    let mut cur = s;
    while !cur.is_null() {
        // SAFETY: configuration is complete and single-threaded; each server has our record
        // (its own, or the main server's when the virtual host has no directive of ours).
        unsafe {
            let conf: *const ServerConf = server_conf(cur);
            if !seen.contains(&conf) {
                seen.push(conf);
                let name = (cur != s && !(*cur).server_hostname.is_null()).then(|| {
                    CStr::from_ptr((*cur).server_hostname)
                        .to_string_lossy()
                        .into_owned()
                });
                server_conf_mut(cur).config.set_daemon_scope(if cur == s {
                    None
                } else {
                    Some(name.as_deref().unwrap_or(""))
                });
            }
            cur = (*cur).next;
        }
    }
    // SAFETY: the records live in pconf for this whole configuration generation.
    seen.into_iter().map(|c| unsafe { &(*c).config }).collect()
}

/// The runtime settings of every WSGIDaemonProcess of this configuration.
fn daemon_specs(
    pconf: *mut b::apr_pool_t,
    servers: &[&ServerConfig],
) -> Result<Vec<crate::daemon::GroupSpec>, String> {
    crate::config::daemon::check_unique(servers)?;
    let facts = super::daemons::facts(pconf);
    let defaults = crate::daemon::groups::Defaults {
        uid: facts.uid,
        gid: facts.gid,
        user_name: facts.user_name,
        socket_prefix: servers
            .first()
            .and_then(|s| s.socket_prefix.clone())
            .unwrap_or(facts.default_socket_prefix),
        apache_timeout: super::server_timeout(),
        apache_version: facts.version,
        python: servers
            .first()
            .map(|s| s.python.clone())
            .unwrap_or_default(),
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut specs = Vec::new();
    for dp in servers.iter().flat_map(|s| s.daemons.iter()) {
        if !seen.insert(dp.name.clone()) {
            continue;
        }
        let imports = servers
            .iter()
            .flat_map(|s| s.import_scripts.iter())
            .filter(|i| i.process_group == dp.name)
            .map(|i| {
                let g = if i.application_group == "%{GLOBAL}" {
                    String::new()
                } else {
                    i.application_group.clone()
                };
                (g, i.path.clone())
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        specs.push(crate::daemon::groups::spec_from_config(
            dp, &defaults, imports,
        )?);
        for opt in &dp.ignored {
            super::log::server(
                super::log::Level::Warning,
                &format!(
                    "rwsgi: WSGIDaemonProcess {}: option '{opt}' is accepted but not implemented; ignored",
                    dp.name
                ),
            );
        }
    }
    Ok(specs)
}

crate::entry! {
    pub(crate) unsafe extern "C" fn child_init(pchild: *mut b::apr_pool_t, _s: *mut b::server_rec) [on panic: ()] {
        super::stopping::child_init();
        crate::daemon::groups::close_listeners_in_child();
        crate::embedded::child_init();
        // SAFETY: the cleanup runs once when the child's pool is destroyed at child exit.
        unsafe {
            b::apr_pool_cleanup_register(
                pchild,
                std::ptr::null(),
                Some(child_exit),
                Some(b::apr_pool_cleanup_null),
            )
        };
    }
}

crate::entry! {
    unsafe extern "C" fn child_exit(_data: *mut c_void) -> b::apr_status_t [on panic: 0] {
        crate::embedded::child_exit();
        0
    }
}

crate::entry! {
    /// WSGIScriptAlias / WSGIScriptAliasMatch: first match in declaration order wins (the
    /// virtual host's aliases before the main server's), exactly as mod_wsgi.
    pub(crate) unsafe extern "C" fn translate_name(r: *mut b::request_rec) -> i32 [on panic: DECLINED] {
        // SAFETY: called by Apache with the live request, in this thread only.
        unsafe { Request::with(r, translate) }
    }
}

fn translate(req: Request<'_>) -> i32 {
    {
        let r = req.raw();
        let uri = req.uri();
        if !uri.starts_with('/') {
            return DECLINED;
        }
        // SAFETY: r->server is live.
        let conf: &ServerConf = unsafe { server_conf((*r).server) };
        for (i, a) in conf.config.aliases.iter().enumerate() {
            let filename = match (&a.pattern, conf.regexes.get(i).and_then(|x| x.as_ref())) {
                (AliasPattern::Prefix(p), _) => match alias::prefix_match(&uri, p) {
                    Some(_) if p == "/" => format!("{}{}", a.target, uri),
                    Some(n) => format!("{}{}", a.target, &uri[n..]),
                    None => continue,
                },
                (AliasPattern::Regex(_), Some(re)) => match re.matches(&uri) {
                    Some((end, groups)) => {
                        format!("{}{}", substitute(&a.target, &groups), &uri[end..])
                    }
                    None => continue,
                },
                (AliasPattern::Regex(_), None) => continue,
            };
            req.set_filename(&filename);
            req.set_handler(HANDLER);
            req.set_note("alias-forced-type", "wsgi-script");
            let o = &a.options;
            for (key, val) in [
                ("mod_wsgi.process_group", &o.process_group),
                ("mod_wsgi.application_group", &o.application_group),
                ("mod_wsgi.callable_object", &o.callable_object),
            ] {
                if let Some(v) = val {
                    req.set_note(key, v);
                }
            }
            if let Some(p) = o.pass_authorization {
                req.set_note("mod_wsgi.pass_authorization", if p { "1" } else { "0" });
            }
            return OK;
        }
        DECLINED
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

crate::entry! {
    pub(crate) unsafe extern "C" fn handler(r: *mut b::request_rec) -> i32 [on panic: SERVER_ERROR] {
        // SAFETY: called by Apache with the live request, in this thread only.
        unsafe { Request::with(r, handle) }
    }
}

fn handle(req: Request<'_>) -> i32 {
    {
        match req.handler() {
            Some(h) if h == HANDLER.to_str().unwrap_or_default() || h == HANDLER_ALT => {}
            _ => return DECLINED,
        }
        let status = crate::handler::handle(req);
        // Not back into the MPM while it may be force-closing this thread's socket.
        super::stopping::wait_while_closing_worker_sockets();
        status
    }
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
