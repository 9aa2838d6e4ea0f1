//! One request as a WSGI application is called with it ([`AppRequest`]: the CGI variables plus
//! what is needed to pick and run the application), and what crosses the socket for it in
//! daemon mode: one variable table, rwsgi's own fields as `rwsgi.*` variables, which never
//! reach the application's environ.

use crate::ipc::{IpcError, vars};

/// What the transport-specific caller knows about the request.
pub struct AppRequest {
    /// The WSGI script file.
    pub script: String,
    /// Its modification time (microseconds), for reloading.
    pub script_mtime: i64,
    pub callable: String,
    /// Application group ("" = main interpreter).
    pub application_group: String,
    pub process_group: String,
    pub reload: bool,
    /// CGI and mod_wsgi.* variables, values as the raw bytes Apache has.
    pub environ: crate::Environ,
    pub https: bool,
    /// `apache.request_rec` for an application running in the Apache child
    /// (WSGIPassApacheRequest On); never on the wire.
    pub request_rec: Option<usize>,
}

const SCRIPT: &str = "rwsgi.script";
const MTIME: &str = "rwsgi.script_mtime";
const CALLABLE: &str = "rwsgi.callable";
const APP_GROUP: &str = "rwsgi.application_group";
const RELOAD: &str = "rwsgi.reload";
const HTTPS: &str = "rwsgi.https";
const HEAD: &str = "rwsgi.header_only";

/// Appends the request head for `app` to `out` (a buffer the caller keeps between requests),
/// with room for the seal's tag the Apache side appends. The request's own variables are
/// borrowed, not copied (a Vec per variable was most of the Apache side's malloc time in
/// daemon mode).
pub fn encode_into(out: &mut Vec<u8>, app: &AppRequest, header_only: bool) {
    let flag = |b: bool| if b { &b"1"[..] } else { &b"0"[..] };
    let mtime = crate::decimal::Decimal::new(app.script_mtime.into());
    let own: [(&[u8], &[u8]); 7] = [
        (SCRIPT.as_bytes(), app.script.as_bytes()),
        (MTIME.as_bytes(), mtime.as_bytes()),
        (CALLABLE.as_bytes(), app.callable.as_bytes()),
        (APP_GROUP.as_bytes(), app.application_group.as_bytes()),
        (RELOAD.as_bytes(), flag(app.reload)),
        (HTTPS.as_bytes(), flag(app.https)),
        (HEAD.as_bytes(), flag(header_only)),
    ];
    let environ = app.environ.iter().map(|(k, v)| (k.as_bytes(), v));
    vars::encode_into(
        out,
        own.into_iter().chain(environ),
        crate::ipc::seal::TAG_LEN,
    );
}

/// Decodes a request head; `process_group` is the daemon's own group name (never taken from
/// the peer). Returns the request and whether it is a HEAD request.
pub fn decode(payload: &[u8], process_group: &str) -> Result<(AppRequest, bool), IpcError> {
    let table = vars::decode(payload)?;
    let mut app = AppRequest {
        script: String::new(),
        script_mtime: 0,
        callable: String::new(),
        application_group: String::new(),
        process_group: process_group.to_string(),
        reload: true,
        environ: crate::Environ::with_capacity(table.len(), payload.len()),
        https: false,
        request_rec: None,
    };
    let (mut header_only, mut callable) = (false, None);
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    for (k, v) in table {
        match k {
            b"rwsgi.script" => app.script = text(v),
            b"rwsgi.script_mtime" => {
                app.script_mtime = text(v)
                    .parse()
                    .map_err(|_| IpcError::Invalid("script mtime"))?
            }
            b"rwsgi.callable" => callable = Some(text(v)),
            b"rwsgi.application_group" => app.application_group = text(v),
            b"rwsgi.reload" => app.reload = v == b"1",
            b"rwsgi.https" => app.https = v == b"1",
            b"rwsgi.header_only" => header_only = v == b"1",
            k if k.starts_with(b"rwsgi.") => return Err(IpcError::Invalid("rwsgi variable")),
            k => app.environ.push(
                std::str::from_utf8(k).map_err(|_| IpcError::Invalid("variable name"))?,
                v,
            ),
        }
    }
    app.callable = callable.unwrap_or_else(|| "application".into());
    if app.script.is_empty() || app.callable.is_empty() {
        return Err(IpcError::Invalid("request without a script"));
    }
    Ok((app, header_only))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_rwsgi_fields_out_of_environ() {
        let app = AppRequest {
            script: "/srv/app.wsgi".into(),
            script_mtime: 123,
            callable: "app".into(),
            application_group: "g".into(),
            process_group: "ignored".into(),
            reload: false,
            environ: [("PATH_INFO", b"/x")].into_iter().collect(),
            https: true,
            request_rec: Some(1),
        };
        let mut buf = Vec::new();
        encode_into(&mut buf, &app, true);
        let (back, head) = decode(&buf, "daemon").unwrap();
        assert!(head);
        assert_eq!(back.script, "/srv/app.wsgi");
        assert_eq!(back.script_mtime, 123);
        assert_eq!(
            back.request_rec, None,
            "an address of this process never crosses"
        );
        assert_eq!(back.process_group, "daemon");
        assert!(!back.reload && back.https);
        assert_eq!(
            back.environ.iter().collect::<Vec<_>>(),
            vec![("PATH_INFO", &b"/x"[..])]
        );
    }

    #[test]
    fn rejects_unknown_rwsgi_fields_and_missing_script() {
        assert!(
            decode(
                &vars::encode(&[("rwsgi.evil", "1"), ("rwsgi.script", "/x")]),
                "d"
            )
            .is_err()
        );
        assert!(decode(&vars::encode(&[("PATH_INFO", "/")]), "d").is_err());
    }
}
