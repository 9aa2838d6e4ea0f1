use super::*;

fn env(pairs: &[(&str, &str)]) -> Environ {
    let mut e = Environ::with_capacity(8, 256);
    for (k, v) in pairs {
        e.push(k, v.as_bytes());
    }
    e
}

fn get<'a>(e: &'a Environ, k: &str) -> Option<&'a str> {
    e.get(k).map(|v| std::str::from_utf8(v).unwrap())
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| header_key(n).unwrap()).collect()
}

fn nets(list: &[&str]) -> Vec<Subnet> {
    list.iter().map(|s| Subnet::parse(s).unwrap()).collect()
}

#[test]
fn header_names_become_cgi_keys() {
    assert_eq!(
        header_key("X-Forwarded-For").unwrap(),
        "HTTP_X_FORWARDED_FOR"
    );
    assert_eq!(header_key("x-real-ip").unwrap(), "HTTP_X_REAL_IP");
    assert!(header_key("X_Forwarded_For").is_err());
    assert!(header_key("").is_err());
}

#[test]
fn subnets_in_every_form() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let n = Subnet::parse("10.1").unwrap();
    assert!(n.contains(ip("10.1.200.3")) && !n.contains(ip("10.2.0.1")));
    let n = Subnet::parse("172.16.0.0/255.240.0.0").unwrap();
    assert!(n.contains(ip("172.31.1.1")) && !n.contains(ip("172.32.0.1")));
    let n = Subnet::parse("192.168.0.0/16").unwrap();
    assert!(n.contains(ip("192.168.9.9")));
    assert!(n.contains(ip("::ffff:192.168.1.1")), "v4-mapped");
    let n = Subnet::parse("fe80::/10").unwrap();
    assert!(n.contains(ip("fe80::1")) && !n.contains(ip("::1")));
    assert!(
        Subnet::parse("127.0.0.1")
            .unwrap()
            .contains(ip("127.0.0.1"))
    );
    assert!(
        !Subnet::parse("127.0.0.1")
            .unwrap()
            .contains(ip("127.0.0.2"))
    );
    for bad in [
        "localhost",
        "300.1.1.1",
        "1.2.3.4.5",
        "10.0.0.0/33",
        "1..2",
        "10.0.0.0/255.0.255.0",
        "",
    ] {
        assert!(Subnet::parse(bad).is_err(), "{bad}");
    }
    assert!(
        Subnet::parse("10.0.0.0/33")
            .unwrap_err()
            .contains("network mask is invalid")
    );
}

#[test]
fn untrusted_peer_gets_nothing_and_loses_every_synonym() {
    let mut e = env(&[
        ("REMOTE_ADDR", "127.0.0.2"),
        ("HTTP_X_FORWARDED_FOR", "1.2.3.4"),
        ("HTTP_X_REAL_IP", "5.6.7.8"),
        ("HTTP_X_FORWARDED_HOST", "evil.example"),
    ]);
    let scheme = apply(
        &mut e,
        &keys(&["X-Forwarded-For"]),
        Some(&nets(&["127.0.0.1"])),
        false,
    );
    assert_eq!(scheme, None);
    assert_eq!(get(&e, "REMOTE_ADDR"), Some("127.0.0.2"));
    assert_eq!(get(&e, "HTTP_X_FORWARDED_FOR"), None);
    assert_eq!(
        get(&e, "HTTP_X_REAL_IP"),
        None,
        "a synonym of a declared header"
    );
    assert_eq!(
        get(&e, "HTTP_X_FORWARDED_HOST"),
        Some("evil.example"),
        "undeclared category"
    );
}

#[test]
fn trusted_peer_applies_and_keeps_only_the_winner() {
    let mut e = env(&[
        ("REMOTE_ADDR", "127.0.0.1"),
        ("HTTP_X_REAL_IP", "5.6.7.8"),
        ("HTTP_X_CLIENT_IP", "9.9.9.9"),
        ("HTTP_X_FORWARDED_PROTO", "https"),
        ("HTTP_X_FORWARDED_SSL", "off"),
        ("HTTP_X_SCRIPT_NAME", "/mount"),
        ("SCRIPT_NAME", "/app"),
    ]);
    let declared = keys(&[
        "X-Client-IP",
        "X-Real-IP",
        "X-Forwarded-Proto",
        "X-Forwarded-SSL",
        "X-Script-Name",
    ]);
    let scheme = apply(&mut e, &declared, None, false);
    assert_eq!(
        get(&e, "REMOTE_ADDR"),
        Some("5.6.7.8"),
        "last declared present wins"
    );
    assert_eq!(get(&e, "HTTP_X_CLIENT_IP"), None);
    assert_eq!(get(&e, "HTTP_X_REAL_IP"), Some("5.6.7.8"));
    assert_eq!(scheme, Some(false), "X-Forwarded-SSL: off came last");
    assert_eq!(get(&e, "HTTP_X_FORWARDED_PROTO"), None);
    assert_eq!(get(&e, "SCRIPT_NAME"), Some("/mount"));
    assert_eq!(get(&e, "mod_wsgi.mount_point"), Some("/mount"));
}

#[test]
fn a_scheme_value_it_does_not_know_changes_nothing_but_counts_as_applied() {
    let mut e = env(&[
        ("REMOTE_ADDR", "127.0.0.1"),
        ("HTTP_X_FORWARDED_PROTO", "ftp"),
    ]);
    assert_eq!(
        apply(&mut e, &keys(&["X-Forwarded-Proto"]), None, true),
        Some(true)
    );
    let mut e = env(&[
        ("REMOTE_ADDR", "127.0.0.1"),
        ("HTTP_X_FORWARDED_PROTO", "HTTP"),
    ]);
    assert_eq!(
        apply(&mut e, &keys(&["X-Forwarded-Proto"]), None, true),
        Some(false)
    );
}

fn xff(value: &str, proxies: Option<&[&str]>) -> (String, Option<String>) {
    let mut e = env(&[
        ("REMOTE_ADDR", "127.0.0.1"),
        ("HTTP_X_FORWARDED_FOR", value),
    ]);
    let list = proxies.map(|p| {
        let mut v = nets(p);
        v.push(Subnet::parse("127.0.0.1").unwrap());
        v
    });
    apply(&mut e, &keys(&["X-Forwarded-For"]), list.as_deref(), false);
    (
        get(&e, "REMOTE_ADDR").unwrap().to_string(),
        get(&e, "HTTP_X_FORWARDED_FOR").map(String::from),
    )
}

#[test]
fn forwarded_for_chains_walk_right_to_left_over_trusted_proxies() {
    let p = Some(&["10.0.0.0/8"][..]);
    assert_eq!(
        xff("198.51.100.1, 203.0.113.9, 10.1.1.1, 127.0.0.1", p),
        (
            "203.0.113.9".into(),
            Some("203.0.113.9, 10.1.1.1, 127.0.0.1".into())
        )
    );
    assert_eq!(
        xff("198.51.100.1, 203.0.113.9", p),
        ("203.0.113.9".into(), Some("203.0.113.9".into()))
    );
    assert_eq!(
        xff("10.2.2.2, 10.1.1.1", p),
        ("10.2.2.2".into(), Some("10.2.2.2, 10.1.1.1".into()))
    );
    assert_eq!(
        xff("198.51.100.1,,  ,10.1.1.1 ,", p),
        ("198.51.100.1".into(), Some("198.51.100.1, 10.1.1.1".into()))
    );
    assert_eq!(
        xff(", ,", p),
        ("127.0.0.1".into(), Some(", ,".into())),
        "nothing to use"
    );
    assert_eq!(
        xff("198.51.100.1, bad!ip, 10.1.1.1", p),
        ("bad!ip".into(), Some("bad!ip, 10.1.1.1".into())),
        "a non-address ends the walk (no DNS)"
    );
}

#[test]
fn forwarded_for_without_a_proxy_list_takes_the_first_element() {
    assert_eq!(
        xff(" , ,1.2.3.4, 5.6.7.8", None),
        ("1.2.3.4".into(), Some(" , ,1.2.3.4, 5.6.7.8".into()))
    );
}

#[test]
fn an_empty_proxy_list_trusts_nobody() {
    let mut e = env(&[("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_REAL_IP", "5.6.7.8")]);
    apply(&mut e, &keys(&["X-Real-IP"]), Some(&[]), false);
    assert_eq!(get(&e, "REMOTE_ADDR"), Some("127.0.0.1"));
    assert_eq!(get(&e, "HTTP_X_REAL_IP"), None);
}
