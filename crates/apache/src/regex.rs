//! Apache's regular expressions (its PCRE wrapper), so that patterns behave exactly as in
//! mod_alias and mod_wsgi.

use super::bindings as b;
use std::ffi::CString;

/// A compiled `WSGIScriptAliasMatch` regular expression (Apache's PCRE wrapper, so patterns
/// behave exactly as in mod_alias / mod_wsgi).
pub struct Regex(*mut b::ap_regex_t);

// SAFETY: a compiled ap_regex_t is immutable after compilation; ap_regexec is thread-safe.
unsafe impl Send for Regex {}
unsafe impl Sync for Regex {}

impl Regex {
    pub fn compile(pattern: &str) -> Result<Regex, String> {
        let c = CString::new(pattern).map_err(|_| "NUL byte in regular expression".to_string())?;
        // SAFETY: ap_regex_t is plain data; ap_regcomp initialises it or fails.
        unsafe {
            let re: *mut b::ap_regex_t = Box::into_raw(Box::new(std::mem::zeroed()));
            if b::ap_regcomp(re, c.as_ptr(), 0) != 0 {
                drop(Box::from_raw(re));
                return Err(format!(
                    "Regular expression could not be compiled: {pattern}"
                ));
            }
            Ok(Regex(re))
        }
    }

    /// Matches `subject`; returns the end of the whole match and the capture groups (for `$n`).
    pub fn matches(&self, subject: &str) -> Option<(usize, Vec<Option<String>>)> {
        const N: usize = 10;
        let c = CString::new(subject).ok()?;
        let mut m = [b::ap_regmatch_t {
            rm_so: -1,
            rm_eo: -1,
        }; N];
        // SAFETY: the regex is compiled; `m` has room for N matches.
        let rc = unsafe { b::ap_regexec(self.0, c.as_ptr(), N, m.as_mut_ptr(), 0) };
        if rc != 0 {
            return None;
        }
        let groups = m
            .iter()
            .map(|g| {
                (g.rm_so >= 0).then(|| subject[g.rm_so as usize..g.rm_eo as usize].to_string())
            })
            .collect();
        Some((m[0].rm_eo as usize, groups))
    }
}

impl Drop for Regex {
    fn drop(&mut self) {
        // SAFETY: compiled by ap_regcomp and owned by us.
        unsafe {
            b::ap_regfree(self.0);
            drop(Box::from_raw(self.0));
        }
    }
}
