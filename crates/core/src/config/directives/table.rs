//! Every directive of mod_wsgi 4.9.4 and 6.1.1: name, where it may appear, how far rwsgi
//! implements it, and its usage line (Apache prints it with a syntax error).

use super::{DirectiveSpec, PythonFeature, Scope, Support};

macro_rules! d {
    ($name:literal, $scope:ident, NeedsPython($feature:expr), $usage:literal) => {
        DirectiveSpec {
            cname: $name,
            scope: Scope::$scope,
            support: Support::NeedsPython($feature),
            cusage: $usage,
        }
    };
    ($name:literal, $scope:ident, $support:ident, $usage:literal) => {
        DirectiveSpec {
            cname: $name,
            scope: Scope::$scope,
            support: Support::$support,
            cusage: $usage,
        }
    };
}

/// The directive table (mod_wsgi 4.9.4 ∪ 6.1.1).
pub const DIRECTIVE_COUNT: usize = 54;
pub static DIRECTIVES: &[DirectiveSpec] = &DIRECTIVE_TABLE;
pub const DIRECTIVE_TABLE: [DirectiveSpec; DIRECTIVE_COUNT] = [
    d!(
        c"WSGIScriptAlias",
        Server,
        Implemented,
        c"URL-path file-or-directory [options]"
    ),
    d!(
        c"WSGIScriptAliasMatch",
        Server,
        Implemented,
        c"regex file-or-directory [options]"
    ),
    d!(
        c"WSGIImportScript",
        Server,
        Implemented,
        c"script process-group=... application-group=..."
    ),
    d!(c"WSGIDaemonProcess", Server, Implemented, c"name [options]"),
    d!(
        c"WSGIProcessGroup",
        ServerDir,
        Implemented,
        c"%{GLOBAL} | %{ENV:var} | name"
    ),
    d!(
        c"WSGIApplicationGroup",
        ServerDir,
        Implemented,
        c"%{GLOBAL} | %{SERVER} | %{RESOURCE} | %{HOST} | %{ENV:var} | name"
    ),
    d!(c"WSGIRestrictProcess", ServerDir, Implemented, c"group ..."),
    d!(
        c"WSGIDispatchScript",
        ServerDir,
        Implemented,
        c"script [application-group=...]"
    ),
    d!(
        c"WSGIHandlerScript",
        ServerDir,
        Implemented,
        c"handler script [options]"
    ),
    d!(c"WSGIPassApacheRequest", ServerDir, Implemented, c"On|Off"),
    d!(c"WSGICallableObject", FileInfo, Implemented, c"name"),
    d!(c"WSGIPassAuthorization", FileInfo, Implemented, c"On|Off"),
    d!(c"WSGIScriptReloading", FileInfo, Implemented, c"On|Off"),
    d!(c"WSGIErrorOverride", FileInfo, NoEffect, c"On|Off"),
    d!(c"WSGIChunkedRequest", FileInfo, Implemented, c"On|Off"),
    d!(c"WSGIMapHEADToGET", FileInfo, Implemented, c"On|Off|Auto"),
    d!(c"WSGIIgnoreActivity", FileInfo, NoEffect, c"On|Off"),
    d!(c"WSGIEnableSendfile", FileInfo, Implemented, c"On|Off"),
    d!(
        c"WSGITrustedProxyHeaders",
        FileInfo,
        Implemented,
        c"header ..."
    ),
    d!(
        c"WSGITrustedProxies",
        FileInfo,
        Implemented,
        c"ip-or-network ..."
    ),
    d!(
        c"WSGIAccessScript",
        AuthConfig,
        Implemented,
        c"script [application-group=...]"
    ),
    d!(
        c"WSGIAuthUserScript",
        AuthConfig,
        Implemented,
        c"script [application-group=...]"
    ),
    d!(
        c"WSGIAuthGroupScript",
        AuthConfig,
        Implemented,
        c"script [application-group=...]"
    ),
    d!(c"WSGIGroupAuthoritative", AuthConfig, NoEffect, c"On|Off"),
    d!(c"WSGIUserAuthoritative", AuthConfig, NoEffect, c"On|Off"),
    d!(
        c"WSGIPythonHome",
        Global,
        Implemented,
        c"prefix-or-virtualenv"
    ),
    d!(
        c"WSGIPythonPath",
        Global,
        Implemented,
        c"directory[:directory...]"
    ),
    d!(c"WSGIPythonEggs", Global, Implemented, c"directory"),
    d!(c"WSGIPythonOptimize", Global, Implemented, c"0|1|2"),
    d!(
        c"WSGIPythonHashSeed",
        Global,
        Implemented,
        c"random|0..4294967295"
    ),
    d!(
        c"WSGIPythonWarnings",
        Global,
        Implemented,
        c"warning-filter"
    ),
    d!(c"WSGIDontWriteBytecode", Global, Implemented, c"On|Off"),
    d!(c"WSGIDestroyInterpreter", Global, NoEffect, c"On|Off"),
    d!(c"WSGIRestrictEmbedded", Global, Implemented, c"On|Off"),
    d!(c"WSGIRestrictStdin", Global, Implemented, c"On|Off"),
    d!(c"WSGIRestrictStdout", Global, Implemented, c"On|Off"),
    d!(c"WSGIRestrictSignal", Global, Implemented, c"On|Off"),
    d!(c"WSGICaseSensitivity", Global, Implemented, c"On|Off"),
    d!(c"WSGILazyInitialization", Global, Implemented, c"On"),
    d!(c"WSGISocketPrefix", Global, Implemented, c"path-prefix"),
    d!(c"WSGISocketRotation", Global, NoEffect, c"On|Off"),
    d!(
        c"WSGIAcceptMutex",
        Global,
        NoEffect,
        c"default|flock|fcntl|sysvsem|posixsem|pthread"
    ),
    d!(c"WSGIServerMetrics", Global, Implemented, c"On|Off"),
    d!(c"WSGIVerboseDebugging", Global, NoEffect, c"On|Off"),
    d!(c"WSGISwitchInterval", Global, Implemented, c"seconds"),
    d!(
        c"WSGIPerInterpreterGIL",
        Global,
        NeedsPython(PythonFeature {
            min: (3, 12),
            free_threaded: false,
            what: "a GIL per sub-interpreter, PEP 684",
        }),
        c"On|Off"
    ),
    d!(
        c"WSGIFreeThreading",
        Global,
        NeedsPython(PythonFeature {
            min: (3, 13),
            free_threaded: true,
            what: "Python without the GIL, PEP 703",
        }),
        c"On|Off"
    ),
    d!(
        c"<WSGIInterpreterOptions",
        Global,
        NeedsPython(PythonFeature {
            min: (3, 12),
            free_threaded: false,
            what: "per-interpreter GIL and threading options, PEP 684",
        }),
        c"[process-group=...] [application-group=...]"
    ),
    d!(
        c"WSGITelemetryService",
        Global,
        NotYet,
        c"unix:/path [interval=N]"
    ),
    d!(c"WSGITelemetryOptions", Global, NotYet, c"[+|-]Flag ..."),
    d!(c"WSGISlowRequests", Global, Implemented, c"seconds"),
    d!(c"WSGINewRelicConfigFile", Global, Implemented, c"path"),
    d!(c"WSGINewRelicEnvironment", Global, Implemented, c"name"),
    d!(c"WSGIPy3kWarningFlag", Global, NoEffect, c"On|Off"),
];
