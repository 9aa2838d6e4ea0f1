use super::*;
use crate::config::model::ServerConfig;
use std::time::Duration;

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

fn err(raw: &str) -> String {
    parse(raw).expect_err(raw)
}

#[test]
fn defaults() {
    let d = parse("site").unwrap();
    assert_eq!(d, DaemonProcess::new("site"));
    assert_eq!(d.name, "site");
    assert_eq!(d.scope, None);
    assert_eq!((d.processes, d.processes_given, d.threads), (1, false, 15));
    assert_eq!(d.listen_backlog, 100);
    assert_eq!(d.maximum_requests, 0);
    assert_eq!(d.graceful_timeout, secs(15));
    assert_eq!(d.shutdown_timeout, secs(5));
    assert_eq!(d.deadlock_timeout, secs(300));
    assert_eq!(d.connect_timeout, secs(15));
    for t in [
        d.restart_interval,
        d.inactivity_timeout,
        d.request_timeout,
        d.interrupt_timeout,
        d.startup_timeout,
        d.eviction_timeout,
        d.socket_timeout,
        d.queue_timeout,
        d.response_socket_timeout,
        d.cpu_time_limit,
    ] {
        assert_eq!(t, None);
    }
    assert_eq!(d.user, None);
    assert_eq!(d.group, None);
    assert_eq!(d.supplementary_groups, None);
    assert_eq!(d.umask, None);
    assert_eq!(d.stack_size, None);
    assert_eq!(d.cpu_priority, 0);
    assert!(d.python_path.is_empty());
    assert_eq!((d.memory_limit, d.virtual_memory_limit), (0, 0));
    assert_eq!(
        (
            d.send_buffer_size,
            d.receive_buffer_size,
            d.response_buffer_size
        ),
        (0, 0, 0)
    );
    assert!(d.ignored.is_empty());
    assert_eq!(d.process_title(), None);
    assert_eq!(d.effective_eviction_timeout(), secs(15));
    let apache = Duration::from_secs(60);
    assert_eq!(d.effective_socket_timeout(apache), apache);
    assert_eq!(d.effective_response_socket_timeout(apache), apache);
    assert_eq!(d.header_buffer_size, None);
}

#[test]
fn every_option() {
    let d = parse(
        "'my site' user=www-data group=#33 supplementary-groups=ssl-cert,,#44 umask=0027 \
         home=/srv/app python-home=/srv/venv python-path=/srv/app::/srv/lib \
         python-eggs=/tmp/eggs lang=en_US.UTF-8 locale=C.UTF-8 display-name='%{GROUP}' \
         cpu-priority=-5 processes=1 threads=0 stack-size=524288 listen-backlog=50 \
         maximum-requests=1000 restart-interval=3600 inactivity-timeout=300 \
         request-timeout=60 interrupt-timeout=2.5 deadlock-timeout=0 startup-timeout=15 \
         graceful-timeout=0 eviction-timeout=7 shutdown-timeout=0 cpu-time-limit=100 \
         memory-limit=1000000000 virtual-memory-limit=2000000000 connect-timeout=0 \
         socket-timeout=30 queue-timeout=45 response-socket-timeout=10 \
         send-buffer-size=512 receive-buffer-size=1048576 header-buffer-size=65536 \
         response-buffer-size=65536",
    )
    .unwrap();
    assert_eq!(d.name, "my site");
    assert_eq!(d.user.as_deref(), Some("www-data"));
    assert_eq!(d.group.as_deref(), Some("#33"));
    assert_eq!(
        d.supplementary_groups,
        Some(vec!["ssl-cert".to_string(), "#44".to_string()])
    );
    assert_eq!(d.umask, Some(0o027));
    assert_eq!(d.home.as_deref(), Some("/srv/app"));
    assert_eq!(d.python_home.as_deref(), Some("/srv/venv"));
    assert_eq!(d.python_path, vec!["/srv/app", "/srv/lib"]);
    assert_eq!(d.python_eggs.as_deref(), Some("/tmp/eggs"));
    assert_eq!(d.lang.as_deref(), Some("en_US.UTF-8"));
    assert_eq!(d.locale.as_deref(), Some("C.UTF-8"));
    assert_eq!(d.display_name.as_deref(), Some("%{GROUP}"));
    assert_eq!(d.process_title().as_deref(), Some("(wsgi:my site)"));
    assert_eq!(d.cpu_priority, -5);
    assert_eq!((d.processes, d.processes_given, d.threads), (1, true, 0));
    assert_eq!(d.stack_size, Some(524_288));
    assert_eq!(d.listen_backlog, 50);
    assert_eq!(d.maximum_requests, 1000);
    assert_eq!(d.restart_interval, secs(3600));
    assert_eq!(d.inactivity_timeout, secs(300));
    assert_eq!(d.request_timeout, secs(60));
    assert_eq!(d.interrupt_timeout, Some(Duration::from_millis(2500)));
    assert_eq!(d.deadlock_timeout, None);
    assert_eq!(d.startup_timeout, secs(15));
    assert_eq!(d.graceful_timeout, None);
    assert_eq!(d.eviction_timeout, secs(7));
    assert_eq!(d.effective_eviction_timeout(), secs(7));
    assert_eq!(d.shutdown_timeout, None);
    assert_eq!(d.cpu_time_limit, secs(100));
    assert_eq!(d.memory_limit, 1_000_000_000);
    assert_eq!(d.virtual_memory_limit, 2_000_000_000);
    assert_eq!(d.connect_timeout, None);
    assert_eq!(d.socket_timeout, secs(30));
    assert_eq!(d.queue_timeout, secs(45));
    assert_eq!(d.response_socket_timeout, secs(10));
    assert_eq!(d.send_buffer_size, 512);
    assert_eq!(d.receive_buffer_size, 1_048_576);
    assert_eq!(d.header_buffer_size, Some(65_536));
    assert_eq!(d.response_buffer_size, 65_536);
    assert!(d.ignored.is_empty());
    let apache = Duration::from_secs(60);
    assert_eq!(d.effective_socket_timeout(apache), Duration::from_secs(30));
    assert_eq!(
        d.effective_response_socket_timeout(apache),
        Duration::from_secs(10)
    );
}

#[test]
fn fallbacks() {
    let d = parse("g socket-timeout=30").unwrap();
    let apache = Duration::from_secs(300);
    assert_eq!(
        d.effective_response_socket_timeout(apache),
        Duration::from_secs(30)
    );
    let d = parse("g graceful-timeout=4 eviction-timeout=0").unwrap();
    assert_eq!(d.effective_eviction_timeout(), secs(4));
    let d = parse("g supplementary-groups=").unwrap();
    assert_eq!(d.supplementary_groups, Some(vec![]));
    // Later options win, as in mod_wsgi.
    let d = parse("g threads=3 threads=4").unwrap();
    assert_eq!(d.threads, 4);
}

#[test]
fn quoting_and_display_name() {
    let d = parse("g display-name='%{GROUP}'").unwrap();
    assert_eq!(d.display_name.as_deref(), Some("%{GROUP}"));
    assert_eq!(d.process_title().as_deref(), Some("(wsgi:g)"));
    let d = parse(r#"g display-name="my app (%{GROUP})" python-path='/a b:/c'"#).unwrap();
    // Only the whole value %{GROUP} is expanded (mod_wsgi compares with strcmp).
    assert_eq!(d.process_title().as_deref(), Some("my app (%{GROUP})"));
    assert_eq!(d.python_path, vec!["/a b", "/c"]);
    let d = parse("g display-name=httpd-app").unwrap();
    assert_eq!(d.process_title().as_deref(), Some("httpd-app"));
}

#[test]
fn decimal_seconds() {
    let d = parse("g request-timeout=1.5 queue-timeout=.25 socket-timeout=7.").unwrap();
    assert_eq!(d.request_timeout, Some(Duration::from_millis(1500)));
    assert_eq!(d.queue_timeout, Some(Duration::from_millis(250)));
    assert_eq!(d.socket_timeout, secs(7));
    let d = parse("g request-timeout=0.0 switch-interval=0.002").unwrap();
    assert_eq!(d.request_timeout, None);
    assert_eq!(d.switch_interval, Some(0.002));
    let d = parse("g inactivity-timeout=0.000000001").unwrap();
    assert_eq!(d.inactivity_timeout, Some(Duration::from_nanos(1)));
}

#[test]
fn name_required() {
    assert_eq!(err(""), "Name of WSGI daemon process not supplied");
    assert_eq!(err("  ''  "), "Name of WSGI daemon process not supplied");
    assert!(err("threads=5").contains("'threads=5' is an option"));
}

#[test]
fn unknown_and_malformed_options() {
    assert_eq!(
        err("g bogus-option=1"),
        "Invalid option to WSGI daemon process definition: 'bogus-option'"
    );
    assert!(
        err("g threads").contains("Invalid option to WSGI daemon process definition: 'threads'")
    );
    assert!(err("g =5").contains("'=5'"));
    // Option names are case-sensitive in mod_wsgi.
    assert!(err("g Threads=5").contains("'Threads'"));
}

#[test]
fn bad_counts() {
    assert_eq!(
        err("g threads=x"),
        "WSGIDaemonProcess threads must be a number between 0 and 65533, not 'x'"
    );
    for bad in ["65534", "-1", "", "1.5", "+3", "99999999999999999999999"] {
        assert!(err(&format!("g threads={bad}")).contains(&format!("not '{bad}'")));
    }
    assert_eq!(parse("g threads=65533").unwrap().threads, 65533);
    for bad in ["0", "-2", "x", "", "2147483648"] {
        assert!(
            err(&format!("g processes={bad}")).starts_with("WSGIDaemonProcess processes must be"),
            "{bad}"
        );
    }
    for opt in ["maximum-requests", "listen-backlog"] {
        for bad in ["-1", "x", "", "1e3"] {
            let e = err(&format!("g {opt}={bad}"));
            assert!(
                e.starts_with(&format!("WSGIDaemonProcess {opt} must be")),
                "{e}"
            );
            assert!(e.ends_with(&format!("not '{bad}'")), "{e}");
        }
    }
    assert!(err("g stack-size=0").contains("stack-size"));
    assert!(err("g stack-size=big").contains("stack-size"));
    assert!(err("g cpu-priority=high").contains("cpu-priority"));
    assert_eq!(parse("g cpu-priority=+3").unwrap().cpu_priority, 3);
}

#[test]
fn bad_times() {
    for opt in [
        "restart-interval",
        "inactivity-timeout",
        "request-timeout",
        "interrupt-timeout",
        "deadlock-timeout",
        "startup-timeout",
        "graceful-timeout",
        "eviction-timeout",
        "shutdown-timeout",
        "queue-timeout",
        "connect-timeout",
        "socket-timeout",
        "response-socket-timeout",
        "cpu-time-limit",
    ] {
        for bad in [
            "-1",
            "x",
            "",
            ".",
            "1e3",
            "1.2.3",
            "inf",
            "5s",
            "9999999999",
        ] {
            let e = err(&format!("g {opt}={bad}"));
            assert!(
                e.starts_with(&format!("WSGIDaemonProcess {opt} must be")),
                "{opt}={bad}: {e}"
            );
            assert!(e.ends_with(&format!("not '{bad}'")), "{e}");
        }
        // Zero turns every one of them off.
        let d = parse(&format!("g {opt}=0")).unwrap();
        let t = match opt {
            "restart-interval" => d.restart_interval,
            "inactivity-timeout" => d.inactivity_timeout,
            "request-timeout" => d.request_timeout,
            "interrupt-timeout" => d.interrupt_timeout,
            "deadlock-timeout" => d.deadlock_timeout,
            "startup-timeout" => d.startup_timeout,
            "graceful-timeout" => d.graceful_timeout,
            "eviction-timeout" => d.eviction_timeout,
            "shutdown-timeout" => d.shutdown_timeout,
            "queue-timeout" => d.queue_timeout,
            "connect-timeout" => d.connect_timeout,
            "socket-timeout" => d.socket_timeout,
            "response-socket-timeout" => d.response_socket_timeout,
            _ => d.cpu_time_limit,
        };
        assert_eq!(t, None, "{opt}");
    }
    // cpu-time-limit is an rlimit: whole seconds only.
    assert!(err("g cpu-time-limit=1.5").contains("whole number of seconds"));
    assert_eq!(
        parse("g request-timeout=2147483647")
            .unwrap()
            .request_timeout,
        secs(2_147_483_647)
    );
    assert!(err("g request-timeout=2147483647.5").contains("request-timeout"));

    for bad in ["0", "-1", "x"] {
        assert!(err(&format!("g switch-interval={bad}")).contains("switch-interval"));
    }
}

#[test]
fn bad_sizes() {
    for (opt, min) in [
        ("send-buffer-size", 512),
        ("receive-buffer-size", 512),
        ("header-buffer-size", 8192),
        ("response-buffer-size", 65536),
    ] {
        assert!(parse(&format!("g {opt}=0")).is_ok());
        assert!(parse(&format!("g {opt}={min}")).is_ok());
        for bad in [format!("{}", min - 1), "1".into(), "-1".into(), "x".into()] {
            let e = err(&format!("g {opt}={bad}"));
            assert!(
                e.starts_with(&format!("WSGIDaemonProcess {opt} must be")),
                "{e}"
            );
            assert!(e.contains(&format!(">= {min}")), "{e}");
        }
        assert!(err(&format!("g {opt}=2147483648")).contains(opt));
    }
    for opt in ["memory-limit", "virtual-memory-limit"] {
        assert!(parse(&format!("g {opt}=9223372036854775807")).is_ok());
        for bad in ["-1", "x", "", "9223372036854775808", "1G"] {
            assert!(err(&format!("g {opt}={bad}")).contains(opt));
        }
    }
}

#[test]
fn identity_values() {
    for root in ["root", "#0", "#00"] {
        assert_eq!(
            err(&format!("g user={root}")),
            format!("WSGI process blocked from running as root: user='{root}'")
        );
    }
    assert_eq!(
        parse("g user=#1000").unwrap().user.as_deref(),
        Some("#1000")
    );
    for bad in ["", "#", "#x", "#-1", "#4294967296"] {
        assert!(
            err(&format!("g user={bad}")).contains("user must be"),
            "{bad}"
        );
        assert!(
            err(&format!("g group={bad}")).contains("group must be"),
            "{bad}"
        );
    }
    // A gid of 0 is allowed, as in mod_wsgi.
    assert_eq!(parse("g group=#0").unwrap().group.as_deref(), Some("#0"));
    assert!(err("g supplementary-groups=a,#x").contains("supplementary-groups"));
    for bad in ["", "0999", "abc", "-022", "01000", "0x12"] {
        assert!(
            err(&format!("g umask={bad}")).contains("umask must be"),
            "{bad}"
        );
    }
    assert_eq!(parse("g umask=0777").unwrap().umask, Some(0o777));
    assert_eq!(parse("g umask=2").unwrap().umask, Some(2));
    assert!(err("g home=relative/dir").contains("home must be an absolute directory"));
    assert!(err("g home=").contains("home"));
}

#[test]
fn ignored_and_refused_options() {
    let d = parse(
        "g socket-user=#33 server-metrics=On response-flush-delay=0 switch-interval=0.01 \
         newrelic-config-file=/etc/nr.ini newrelic-environment=prod server-metrics=off",
    )
    .unwrap();
    assert_eq!(
        d.ignored,
        vec!["socket-user", "server-metrics", "response-flush-delay",]
    );
    assert_eq!(d.newrelic_config_file.as_deref(), Some("/etc/nr.ini"));
    assert_eq!(d.newrelic_environment.as_deref(), Some("prod"));
    assert_eq!(d.switch_interval, Some(0.01));
    // Ignored options are still validated.
    assert!(err("g server-metrics=maybe").contains("server-metrics must be On or Off"));
    assert!(err("g response-flush-delay=-5").contains("response-flush-delay"));
    assert!(err("g socket-user=").contains("socket-user"));
    for opt in REFUSED_OPTIONS {
        let e = err(&format!("g {opt}=/x"));
        assert!(
            e.contains(&format!("option '{opt}' is not supported by rwsgi")),
            "{e}"
        );
    }
}

fn server(daemons: &[&str]) -> ServerConfig {
    ServerConfig {
        daemons: daemons.iter().map(|n| DaemonProcess::new(n)).collect(),
        ..Default::default()
    }
}

#[test]
fn uniqueness_across_servers() {
    let main = server(&["a", "b"]);
    let v1 = server(&["c"]);
    let v2 = server(&["d"]);
    assert!(check_unique(&[&main, &v1, &v2]).is_ok());
    assert!(check_unique(&[]).is_ok());
    let dup = server(&["b"]);
    let e = check_unique(&[&main, &v1, &dup]).unwrap_err();
    assert!(
        e.starts_with("Name duplicates previous WSGI daemon definition: 'b'"),
        "{e}"
    );
}

#[test]
fn merge_does_not_inherit_and_fails_closed() {
    let mut main = server(&["global"]);
    let vhost = server(&["site"]);
    let mut merged = ServerConfig::merge(&main, &vhost);
    assert_eq!(merged.daemons.len(), 1);
    assert_eq!(merged.daemons[0].name, "site");
    // Until the Apache layer names the virtual host, its groups serve no request.
    assert_eq!(merged.daemons[0].scope.as_deref(), Some(""));
    assert!(!merged.daemons[0].accessible_from("example.org"));
    merged.set_daemon_scope(Some("example.org"));
    main.set_daemon_scope(None);
    assert!(merged.daemons[0].accessible_from("example.org"));
    assert!(!merged.daemons[0].accessible_from("other.org"));
    assert!(main.daemons[0].accessible_from("anything"));
    assert!(check_unique(&[&main, &merged]).is_ok());
    // A virtual host with no WSGIDaemonProcess of its own has no groups.
    assert!(
        ServerConfig::merge(&main, &ServerConfig::default())
            .daemons
            .is_empty()
    );
}

#[test]
fn group_names_are_claimed_once() {
    let mut names = GroupNames::new();
    assert!(
        names
            .claim("a", "/etc/apache2/sites-enabled/a.conf:3")
            .is_ok()
    );
    assert!(
        names
            .claim("b", "/etc/apache2/sites-enabled/b.conf:3")
            .is_ok()
    );
    let e = names
        .claim("a", "/etc/apache2/sites-enabled/c.conf:9")
        .unwrap_err();
    assert!(e.contains("'a'"), "{e}");
    assert!(
        e.contains("first declared at /etc/apache2/sites-enabled/a.conf:3"),
        "{e}"
    );
    names.clear();
    assert!(names.claim("a", "x:1").is_ok());
}

#[test]
fn resolution() {
    let mut main = server(&["global"]);
    main.set_daemon_scope(None);
    let mut a = server(&["site-a"]);
    a.set_daemon_scope(Some("a.example"));
    let mut a2 = server(&["site-a2"]);
    a2.set_daemon_scope(Some("a.example"));
    let servers = [&main, &a, &a2];
    let find = |n: &str| find_daemon(&servers, n);
    let resolve = |req: &str, restrict: Option<&[String]>, host: &str| {
        resolve_process_group(req, restrict, host, find).map(|g| g.map(|d| d.name.clone()))
    };

    // Embedded.
    assert_eq!(resolve("", None, "a.example"), Ok(None));
    assert_eq!(resolve("%{GLOBAL}", None, "a.example"), Ok(None));
    // Global groups serve every virtual host; a virtual host's groups serve the virtual
    // hosts with the same ServerName (a.example has two <VirtualHost> blocks).
    assert_eq!(
        resolve("global", None, "b.example"),
        Ok(Some("global".into()))
    );
    assert_eq!(
        resolve("site-a", None, "a.example"),
        Ok(Some("site-a".into()))
    );
    assert_eq!(
        resolve("site-a2", None, "a.example"),
        Ok(Some("site-a2".into()))
    );
    assert_eq!(
        resolve("site-a", None, "b.example"),
        Err("Daemon process called 'site-a' cannot be accessed by this WSGI application".into())
    );
    assert_eq!(
        resolve("nope", None, "a.example"),
        Err("No WSGI daemon process called 'nope' has been configured".into())
    );
    // Names are exact.
    assert!(resolve("Global", None, "a.example").is_err());

    // WSGIRestrictProcess: checked first, also for embedded mode, case-insensitively.
    let only_global = vec!["GLOBAL".to_string()];
    assert_eq!(
        resolve("global", Some(&only_global), "a.example"),
        Ok(Some("global".into()))
    );
    assert_eq!(
        resolve("site-a", Some(&only_global), "a.example"),
        Err("Daemon process called 'site-a' cannot be accessed by this WSGI application as not a member of allowed groups".into())
    );
    assert_eq!(
        resolve("", Some(&only_global), "a.example"),
        Err("Daemon process called '' cannot be accessed by this WSGI application as not a member of allowed groups".into())
    );
    let with_embedded = vec![String::new(), "nope".to_string()];
    assert_eq!(resolve("%{GLOBAL}", Some(&with_embedded), "x"), Ok(None));
    // Allowed by the list but not declared: still unknown.
    assert!(
        resolve("nope", Some(&with_embedded), "x")
            .unwrap_err()
            .starts_with("No WSGI daemon process called 'nope'")
    );
}

#[test]
fn resolution_over_a_runtime_table() {
    struct Spec {
        scope: Option<String>,
    }
    impl GroupScope for Spec {
        fn scope(&self) -> Option<&str> {
            self.scope.as_deref()
        }
    }
    let spec = std::sync::Arc::new(Spec {
        scope: Some("a.example".into()),
    });
    let lookup = |_: &str| Some(spec.clone());
    assert!(resolve_process_group("g", None, "a.example", lookup).is_ok());
    assert!(resolve_process_group("g", None, "b.example", lookup).is_err());
    assert!(is_accessible(None, "x"));
}
