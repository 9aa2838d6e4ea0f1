use super::*;

fn id(s: &str) -> String {
    s.to_string()
}

#[test]
fn every_directive_is_unique_and_dispatchable() {
    for (i, d) in DIRECTIVES.iter().enumerate() {
        assert!(
            DIRECTIVES[i + 1..].iter().all(|o| o.cname != d.cname),
            "{} twice",
            d.name()
        );
        if d.support == Support::NotYet {
            let err = match d.target() {
                Target::Server => apply_server(d, &mut ServerConfig::default(), "x", &id),
                Target::Dir => apply_dir(d, &mut DirConfig::default(), "x", &id),
            };
            assert!(err.unwrap_err().contains("is not supported yet by rwsgi"));
        }
    }
    assert_eq!(DIRECTIVES.len(), 54);
}

#[test]
fn slow_requests_takes_seconds_zero_is_off() {
    let d = find("WSGISlowRequests").unwrap();
    let mut cfg = ServerConfig::default();
    apply_server(d, &mut cfg, "2.5", &id).unwrap();
    assert_eq!(cfg.python.slow_request_time, Some(2.5));
    apply_server(d, &mut cfg, "0", &id).unwrap();
    assert_eq!(cfg.python.slow_request_time, None);
    for bad in ["-1", "soon", "inf", "2s"] {
        let e = apply_server(d, &mut ServerConfig::default(), bad, &id).unwrap_err();
        assert!(e.starts_with("WSGISlowRequests must be"), "{bad}: {e}");
    }
}

#[test]
fn a_directive_for_another_python_names_both_pythons() {
    let gil = find("WSGIPerInterpreterGIL").unwrap();
    let py311 = BuiltPython {
        version: (3, 11),
        free_threaded: false,
    };
    let err = python_requirement(gil, py311).unwrap_err();
    assert!(err.contains("needs Python 3.12 or later"), "{err}");
    assert!(err.contains("built against Python 3.11"), "{err}");
    let ft = find("WSGIFreeThreading").unwrap();
    let py313 = BuiltPython {
        version: (3, 13),
        free_threaded: false,
    };
    let err = python_requirement(ft, py313).unwrap_err();
    assert!(err.contains("3.13 or later, free-threaded build"), "{err}");
    // with the right Python it is rwsgi that lacks it
    let py313t = BuiltPython {
        version: (3, 13),
        free_threaded: true,
    };
    let err = python_requirement(ft, py313t).unwrap_err();
    assert!(err.contains("not supported yet by rwsgi"), "{err}");
    let opts = find("<WSGIInterpreterOptions").unwrap();
    assert!(
        python_requirement(opts, py311)
            .unwrap_err()
            .starts_with("WSGIInterpreterOptions needs Python 3.12")
    );
    assert_eq!(
        python_requirement(find("WSGIScriptAlias").unwrap(), py311),
        Ok(())
    );
}

#[test]
fn script_alias_with_options() {
    let spec = find("WSGIScriptAlias").unwrap();
    let mut cfg = ServerConfig::default();
    apply_server(
        spec,
        &mut cfg,
        "/app /srv/app.wsgi application-group=%{GLOBAL} callable-object=app pass-authorization=On",
        &id,
    )
    .unwrap();
    let a = &cfg.aliases[0];
    assert_eq!(a.pattern, AliasPattern::Prefix("/app".into()));
    assert_eq!(a.options.application_group.as_deref(), Some("%{GLOBAL}"));
    assert_eq!(a.options.callable_object.as_deref(), Some("app"));
    assert_eq!(a.options.pass_authorization, Some(true));
    assert!(
        apply_server(spec, &mut cfg, "/a /b bogus=1", &id)
            .unwrap_err()
            .contains("bogus")
    );
    assert!(apply_server(spec, &mut cfg, "/a", &id).is_err());
    assert!(apply_server(spec, &mut cfg, "/a /b application-group=%{NOPE}", &id).is_err());
}

#[test]
fn python_settings() {
    let mut cfg = ServerConfig::default();
    let f = |n: &str, cfg: &mut ServerConfig, v: &str| apply_server(find(n).unwrap(), cfg, v, &id);
    f("WSGIPythonOptimize", &mut cfg, "2").unwrap();
    assert!(f("WSGIPythonOptimize", &mut cfg, "3").is_err());
    f("WSGIPythonPath", &mut cfg, "/a:/b").unwrap();
    f("WSGIPythonHashSeed", &mut cfg, "123").unwrap();
    assert!(f("WSGIPythonHashSeed", &mut cfg, "-1").is_err());
    f("WSGIRestrictEmbedded", &mut cfg, "on").unwrap();
    assert!(f("WSGILazyInitialization", &mut cfg, "Off").is_err());
    f("WSGILazyInitialization", &mut cfg, "On").unwrap();
    assert_eq!(cfg.python.optimize, Some(2));
    assert_eq!(cfg.python.path, vec!["/a", "/b"]);
    assert_eq!(cfg.python.hash_seed, Some(HashSeed::Fixed(123)));
    assert_eq!(cfg.python.restrict_embedded, Some(true));
}

#[test]
fn import_script_needs_both_groups() {
    let spec = find("WSGIImportScript").unwrap();
    let mut cfg = ServerConfig::default();
    assert!(apply_server(spec, &mut cfg, "/x.wsgi process-group=%{GLOBAL}", &id).is_err());
    apply_server(
        spec,
        &mut cfg,
        "/x.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}",
        &id,
    )
    .unwrap();
    assert_eq!(cfg.import_scripts.len(), 1);
}

#[test]
fn daemon_process_directive() {
    let spec = find("WSGIDaemonProcess").unwrap();
    assert_eq!(spec.support, Support::Implemented);
    assert_eq!(spec.target(), Target::Server);
    let mut cfg = ServerConfig::default();
    apply_server(
        spec,
        &mut cfg,
        "site processes=2 threads=4 display-name='%{GROUP}'",
        &id,
    )
    .unwrap();
    apply_server(spec, &mut cfg, "other", &id).unwrap();
    assert_eq!(cfg.daemons.len(), 2);
    assert_eq!(cfg.daemons[0].processes, 2);
    assert_eq!(cfg.daemons[0].threads, 4);
    assert_eq!(
        apply_server(spec, &mut cfg, "site threads=1", &id).unwrap_err(),
        "Name duplicates previous WSGI daemon definition: 'site'"
    );
    assert!(
        apply_server(spec, &mut cfg, "x bogus=1", &id)
            .unwrap_err()
            .contains("'bogus'")
    );
    assert!(apply_server(spec, &mut cfg, "", &id).is_err());
    assert_eq!(cfg.daemons.len(), 2);
    // A named process group in WSGIImportScript / WSGIScriptAlias still parses.
    apply_server(
        find("WSGIImportScript").unwrap(),
        &mut cfg,
        "/srv/app.wsgi process-group=site application-group=%{GLOBAL}",
        &id,
    )
    .unwrap();
    assert_eq!(cfg.import_scripts[0].process_group, "site");
    apply_server(
        find("WSGIScriptAlias").unwrap(),
        &mut cfg,
        "/ /srv/app.wsgi process-group=site",
        &id,
    )
    .unwrap();
    assert!(!cfg.aliases[0].is_embedded());
}

#[test]
fn restrict_process_directive() {
    let spec = find("WSGIRestrictProcess").unwrap();
    assert_eq!(spec.support, Support::Implemented);
    assert_eq!(spec.target(), Target::Dir);
    let mut outer = DirConfig::default();
    apply_dir(spec, &mut outer, "site %{GLOBAL} 'other one'", &id).unwrap();
    assert_eq!(
        outer.restrict_process,
        Some(vec![
            "site".to_string(),
            String::new(),
            "other one".to_string()
        ])
    );
    assert!(apply_dir(spec, &mut outer, "  ", &id).is_err());
    // An inner list replaces the outer one.
    let mut inner = DirConfig::default();
    apply_dir(spec, &mut inner, "only", &id).unwrap();
    let m = DirConfig::merge(&outer, &inner);
    assert_eq!(m.restrict_process, Some(vec!["only".to_string()]));
    let m = DirConfig::merge(&outer, &DirConfig::default());
    assert_eq!(m.restrict_process, outer.restrict_process);
}

#[test]
fn dir_directives() {
    let mut cfg = DirConfig::default();
    apply_dir(find("WSGIMapHEADToGET").unwrap(), &mut cfg, "auto", &id).unwrap();
    apply_dir(
        find("wsgiapplicationgroup").unwrap(),
        &mut cfg,
        "%{ENV:APP}",
        &id,
    )
    .unwrap();
    assert!(apply_dir(find("WSGIChunkedRequest").unwrap(), &mut cfg, "maybe", &id).is_err());
    assert_eq!(cfg.map_head_to_get, Some(MapHeadToGet::Auto));
    assert_eq!(cfg.application_group.as_deref(), Some("%{ENV:APP}"));
}
