//! The environment a POSIX shell has after sourcing a script (Debian's /etc/apache2/envvars,
//! `rwsgi serve --envvars-script`).

use std::path::Path;
use std::process::Command;

/// Every variable after `. script`; Err with the shell's complaint when sourcing fails.
pub fn sourced_env(script: &Path) -> Result<Vec<(String, String)>, String> {
    // `.` looks a name without a slash up in PATH: give it the full path.
    let script = std::fs::canonicalize(script).map_err(|e| format!("{}: {e}", script.display()))?;
    let out = Command::new("sh")
        .arg("-c")
        .arg(". \"$0\" >&2 && env -0")
        .arg(&script)
        .output()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "sourcing {} fails: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out
        .stdout
        .split(|&b| b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect())
}
