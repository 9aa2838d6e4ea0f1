//! Micro-benchmarks of the daemon-mode wire: frame, request-variable table and response head
//! codecs, one frame through a socket pair, and a bulk body through a shared-memory ring.
//! `cargo bench --bench ipc`; criterion prints medians with confidence intervals.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rwsgi_core::ipc::channel;
use rwsgi_core::ipc::frame::{Frame, Kind};
use rwsgi_core::ipc::head::{self, ResponseHead};
use rwsgi_core::ipc::ring::{Inbound, Outbound, SharedMem};
use rwsgi_core::ipc::vars;
use std::hint::black_box;

/// A request's variables as a typical browser request produces them (~30 entries).
fn typical_environ() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = [
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/app/items/42?sort=name&page=2"),
        ("SCRIPT_NAME", "/app"),
        ("PATH_INFO", "/items/42"),
        ("QUERY_STRING", "sort=name&page=2"),
        ("SERVER_NAME", "www.example.com"),
        ("SERVER_PORT", "443"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_SOFTWARE", "Apache/2.4.71 (Debian)"),
        ("SERVER_ADDR", "127.0.0.1"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", "51234"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("DOCUMENT_ROOT", "/var/www/html"),
        ("SCRIPT_FILENAME", "/srv/app/wsgi.py"),
        ("HTTP_HOST", "www.example.com"),
        (
            "HTTP_USER_AGENT",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "HTTP_ACCEPT",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.5"),
        ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br"),
        (
            "HTTP_COOKIE",
            "sessionid=0123456789abcdef0123456789abcdef; csrftoken=abcdefabcdefabcdef",
        ),
        ("HTTP_CONNECTION", "keep-alive"),
        ("mod_wsgi.process_group", "example.com"),
        ("mod_wsgi.application_group", ""),
        ("mod_wsgi.callable_object", "application"),
        ("mod_wsgi.request_handler", "wsgi-script"),
        ("mod_wsgi.script_reloading", "1"),
        ("mod_wsgi.queue_start", "1763942400000000"),
        ("rwsgi.script", "/srv/app/wsgi.py"),
        ("rwsgi.callable", "application"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
    .collect();
    v.sort();
    v
}

fn codecs(c: &mut Criterion) {
    let environ = typical_environ();
    let encoded = vars::encode(&environ);
    c.bench_function("vars encode (30 variables)", |b| {
        b.iter(|| vars::encode(black_box(&environ)))
    });
    c.bench_function("vars decode (30 variables)", |b| {
        b.iter(|| vars::decode(black_box(&encoded)).map(|t| t.len()))
    });
    let h = ResponseHead {
        status: 200,
        status_line: b"200 OK"[..].into(),
        headers: vec![
            (
                b"Content-Type"[..].into(),
                b"text/html; charset=utf-8"[..].into(),
            ),
            (b"Content-Length"[..].into(), b"5120"[..].into()),
            (
                b"Set-Cookie"[..].into(),
                b"a=b; Path=/; HttpOnly"[..].into(),
            ),
            (b"Cache-Control"[..].into(), b"no-cache"[..].into()),
        ],
    };
    c.bench_function("response head encode+decode", |b| {
        b.iter(|| head::decode(&head::encode(black_box(&h))).map(|h| h.status))
    });
    let frame = Frame::new(Kind::RequestHead, 1, encoded.clone());
    let wire = frame.encode();
    c.bench_function("frame decode (request head)", |b| {
        b.iter(|| Frame::decode(black_box(&wire)).map(|f| f.payload.len()))
    });
}

fn socket(c: &mut Criterion) {
    let (a, b) = channel::pair().expect("socketpair");
    let small = Frame::new(Kind::ResponseEnd, 1, vec![]);
    c.bench_function("socket pair: one empty frame there and back", |bench| {
        bench.iter(|| {
            a.send(&small).expect("send");
            let (f, _) = b.recv(None).expect("recv");
            b.send(&f).expect("send");
            a.recv(None).expect("recv")
        })
    });
}

fn ring(c: &mut Criterion) {
    let size = 1 << 20;
    let mem = SharedMem::create("bench", size).expect("memfd");
    let peer = SharedMem::open(mem.fd().try_clone_to_owned().expect("dup")).expect("map");
    let mut out = Outbound::new(mem);
    let mut inb = Inbound::new(peer);
    let body = vec![7u8; 1 << 20];
    let mut dst = vec![0u8; size / 4];
    let mut g = c.benchmark_group("ring");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("1 MiB body through a 1 MiB ring (put, take, credit)", |b| {
        b.iter(|| {
            let mut rest = &body[..];
            while !rest.is_empty() {
                let (off, n) = out.put(rest).expect("room");
                inb.take(off, &mut dst[..n]).expect("slice");
                out.credit(n).expect("credit");
                rest = &rest[n..];
            }
        })
    });
    g.finish();
}

criterion_group!(benches, codecs, socket, ring);
criterion_main!(benches);
