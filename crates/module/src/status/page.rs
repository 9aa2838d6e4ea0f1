//! `SetHandler rwsgi-status`: the status page (HTML, `?json`, `?prometheus`), and its one
//! action, `POST ?stacks=GROUP`: the group's processes log the Python stacks of their running
//! requests. Apache's access control (`Require` in the same `<Location>`) decides who sees
//! it; nothing serves it unless configured.

use rwsgi_apache::hooks::Handled;
use rwsgi_apache::output::Output;
use rwsgi_apache::{Request, log};
use rwsgi_core::Level;
use rwsgi_core::http::Status;
use rwsgi_core::status::render::{self, Form};
use rwsgi_core::status::{GroupBoard, Probe, is_alive, read_status, rss_of};
use std::sync::atomic::Ordering;

/// The handler name.
pub const HANDLER: &str = "rwsgi-status";

pub fn serve(req: Request<'_>) -> Handled {
    let query = req.args().unwrap_or_default().into_owned();
    let method = req.method().into_owned();
    let Some(boards) = super::boards() else {
        req.log(
            Level::Error,
            "rwsgi: rwsgi-status: this Apache child has no status board (see the warning at start-up)",
        );
        return Handled::Status(Status::SERVICE_UNAVAILABLE);
    };
    match method.as_str() {
        "GET" | "HEAD" => {}
        "POST" => return ask_for_stacks(&req, boards, &query),
        _ => {
            req.add_header("Allow", b"GET, HEAD, POST");
            let body = b"rwsgi-status answers GET, HEAD and POST\n";
            return send(&req, 405, "text/plain; charset=utf-8", body);
        }
    }
    let groups: Vec<Option<&GroupBoard>> = boards.groups.iter().map(Some).collect();
    let probe = Probe {
        alive: is_alive,
        rss: rss_of,
    };
    let view = read_status(
        &boards.server,
        &groups,
        &probe,
        &crate::embedded::version_component(),
    );
    let form = Form::of(&query);
    let body = match form {
        Form::Html { refresh } => render::html(&view, refresh),
        Form::Json => render::json(&view),
        Form::Prometheus => render::prometheus(&view),
    };
    send(&req, 200, form.content_type(), body.as_bytes())
}

fn send(req: &Request<'_>, code: u16, content_type: &str, body: &[u8]) -> Handled {
    req.set_status(code, b"");
    req.add_header("Content-Type", content_type.as_bytes());
    req.add_header("Cache-Control", b"no-store");
    let mut out = Output::new(req);
    if !req.header_only() {
        let _ = out.write(body, false, false);
    }
    let _ = out.finish();
    Handled::Done
}

/// `POST ?stacks=NAME` (a daemon group: its supervisor signals its processes) or
/// `POST ?embedded-stacks` (every Apache child's watcher).
fn ask_for_stacks(req: &Request<'_>, boards: &rwsgi_core::status::Boards, query: &str) -> Handled {
    if let Some(refused) = cross_site(req) {
        return refused;
    }
    let (asked, whom, name) = if query.split('&').any(|kv| kv == "embedded-stacks") {
        let asked = boards.server.embedded_stack_requests();
        (
            Some(asked),
            "the Apache children".to_string(),
            "embedded".to_string(),
        )
    } else {
        let Some(name) = query.split('&').find_map(|kv| kv.strip_prefix("stacks=")) else {
            return Handled::Status(Status::BAD_REQUEST);
        };
        let name = percent_decode(name);
        let asked = match boards.target_of(&name) {
            0 => None,
            t => boards.server.stack_requests(t - 1),
        };
        (asked, format!("daemon process group '{name}'"), name)
    };
    let Some(asked) = asked else {
        return Handled::Status(Status::NOT_FOUND);
    };
    asked.fetch_add(1, Ordering::Relaxed);
    rwsgi_core::status::wake_all(asked);
    log::server(
        Level::Notice,
        &format!(
            "rwsgi: {} asked {whom} for the Python stacks of their running requests.",
            req.client_ip()
        ),
    );
    let body = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>rwsgi status</title></head><body>\
         <p>The processes of “{}” are logging the Python stacks of their running requests into Apache's error log (within a second).</p>\
         <p><a href=\"?\">Back to the status page</a></p></body></html>\n",
        name.replace('&', "&amp;").replace('<', "&lt;")
    );
    send(req, 202, "text/html; charset=utf-8", body.as_bytes())
}

/// A form posted from another site (a browser on an allowed network can be made to): refused.
/// Browsers say where a request comes from in Sec-Fetch-Site, or at least in Origin.
fn cross_site(req: &Request<'_>) -> Option<Handled> {
    let fetch_site = req.header_in("Sec-Fetch-Site");
    let foreign = match fetch_site.as_deref() {
        Some(site) => !matches!(site, "same-origin" | "none"),
        None => match (req.header_in("Origin"), req.header_in("Host")) {
            (Some(origin), Some(host)) => {
                origin.split_once("://").map(|(_, h)| h) != Some(host.as_str())
            }
            (Some(_), None) => true,
            _ => false,
        },
    };
    foreign.then(|| {
        req.log(
            Level::Error,
            "rwsgi: rwsgi-status: refused a stacks request posted from another site",
        );
        Handled::Status(Status::FORBIDDEN)
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn group_names_are_decoded() {
        assert_eq!(super::percent_decode("my%20app+x%zz"), "my app x%zz");
    }
}
