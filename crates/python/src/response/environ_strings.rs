//! The environ's `str` objects, made once per interpreter. Every request of an application
//! names the same ~45 variables, and many have the same value each time (the server's name
//! and port, the method, the script, mod_wsgi's settings): making a key and a value object
//! for each, every request, was a third of the objects a hello request allocated, each a
//! fresh pymalloc block and a fresh hash. Keys are now made once; the values of the variables
//! in [`STABLE`] are reused while they stay the same.

use crate::ffi::gil_cell::KeptRef;
use crate::ffi::interp::Py;
use crate::ffi::object::{Obj, PyResult};
use std::collections::HashMap;

/// At most this many variable names are kept per interpreter (a request with names beyond
/// them gets fresh objects for those).
const MAX_NAMES: usize = 256;
const MAX_NAME_LEN: usize = 64;
const MAX_VALUE_LEN: usize = 256;

/// Variables whose last value is kept for the next request: they describe the server, its
/// configuration or the client software, never a request's own data (no URL, query string,
/// cookie, credential or address of a user outlives its request).
const STABLE: &[&str] = &[
    "CONTENT_TYPE",
    "CONTEXT_DOCUMENT_ROOT",
    "CONTEXT_PREFIX",
    "DOCUMENT_ROOT",
    "GATEWAY_INTERFACE",
    "HTTPS",
    "HTTP_ACCEPT",
    "HTTP_ACCEPT_ENCODING",
    "HTTP_ACCEPT_LANGUAGE",
    "HTTP_CACHE_CONTROL",
    "HTTP_CONNECTION",
    "HTTP_HOST",
    "HTTP_USER_AGENT",
    "PATH",
    "REQUEST_METHOD",
    "REQUEST_SCHEME",
    "SCRIPT_FILENAME",
    "SCRIPT_NAME",
    "SERVER_ADDR",
    "SERVER_ADMIN",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "SERVER_SIGNATURE",
    "SERVER_SOFTWARE",
    "mod_wsgi.application_group",
    "mod_wsgi.callable_object",
    "mod_wsgi.enable_sendfile",
    "mod_wsgi.handler_script",
    "mod_wsgi.ignore_activity",
    "mod_wsgi.listener_host",
    "mod_wsgi.listener_port",
    "mod_wsgi.process_group",
    "mod_wsgi.request_handler",
    "mod_wsgi.script_name",
    "mod_wsgi.script_reloading",
    "wsgi.url_scheme",
];

#[derive(Default)]
pub struct EnvironStrings {
    names: Vec<Name>,
    index: HashMap<Box<str>, usize>,
    /// The name at each position of the last request's variables: an application's requests
    /// list them mostly in the same order, so a name is found by one comparison.
    order: Vec<usize>,
}

struct Name {
    text: Box<str>,
    key: KeptRef,
    /// For a [`STABLE`] variable: the last value, as bytes and as the `str` given out.
    value: Option<(Vec<u8>, Option<KeptRef>)>,
}

impl EnvironStrings {
    /// Sets every variable in `env`.
    pub fn fill<'a>(
        &mut self,
        py: Py<'_>,
        env: &Obj,
        vars: impl Iterator<Item = (&'a str, &'a [u8])>,
    ) -> PyResult<()> {
        for (i, (k, v)) in vars.enumerate() {
            match self.name(py, i, k)? {
                Some(n) => {
                    let name = &mut self.names[n];
                    env.dict_set(&name.key.get(py), &name.value_of(py, v)?)?;
                }
                None => env.dict_set(&Obj::str(py, k)?, &Obj::latin1(py, v)?)?,
            }
        }
        Ok(())
    }

    /// Sets each of `objects` in `env`, their positions counted from `start`.
    pub fn fill_objects(
        &mut self,
        py: Py<'_>,
        env: &Obj,
        start: usize,
        objects: &[(&str, Obj)],
    ) -> PyResult<()> {
        for (i, (k, v)) in objects.iter().enumerate() {
            match self.name(py, start + i, k)? {
                Some(n) => env.dict_set(&self.names[n].key.get(py), v)?,
                None => env.dict_set(&Obj::str(py, k)?, v)?,
            }
        }
        Ok(())
    }

    /// The index of `text` in `names` (added if there is room), for position `i`.
    fn name(&mut self, py: Py<'_>, i: usize, text: &str) -> PyResult<Option<usize>> {
        if let Some(&n) = self.order.get(i)
            && same(self.names[n].text.as_bytes(), text.as_bytes())
        {
            return Ok(Some(n));
        }
        let n = match self.index.get(text) {
            Some(&n) => n,
            None if self.names.len() < MAX_NAMES && text.len() <= MAX_NAME_LEN => {
                self.names.push(Name {
                    text: text.into(),
                    key: KeptRef::new(Obj::str(py, text)?),
                    value: STABLE.contains(&text).then(|| (Vec::new(), None)),
                });
                self.index.insert(text.into(), self.names.len() - 1);
                self.names.len() - 1
            }
            None => return Ok(None),
        };
        match self.order.len() {
            len if i < len => self.order[i] = n,
            len if i == len && len < MAX_NAMES => self.order.push(n),
            _ => {}
        }
        Ok(Some(n))
    }
}

/// Equality of two short byte strings, inline: as a call to libc's `memcmp` (what `==` on
/// slices becomes) the two comparisons per variable cost about as much as the objects they
/// save (`bench/profile --workload hello`).
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |s: &[u8], i: usize| u64::from_ne_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let n = a.len();
    if n < 8 {
        return (0..n).all(|i| a[i] == b[i]);
    }
    // Whole words, the last one overlapping the one before.
    (0..n / 8).all(|w| word(a, w * 8) == word(b, w * 8)) && word(a, n - 8) == word(b, n - 8)
}

impl Name {
    fn value_of(&mut self, py: Py<'_>, v: &[u8]) -> PyResult<Obj> {
        let Some((bytes, kept)) = self.value.as_mut().filter(|_| v.len() <= MAX_VALUE_LEN) else {
            return Obj::latin1(py, v);
        };
        if let Some(k) = kept
            && same(bytes, v)
        {
            return Ok(k.get(py));
        }
        let o = Obj::latin1(py, v)?;
        bytes.clear();
        bytes.extend_from_slice(v);
        match kept {
            Some(k) => k.replace(py, o.clone()),
            None => *kept = Some(KeptRef::new(o.clone())),
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn same_compares_every_byte_at_every_length() {
        for n in 0..40 {
            let a: Vec<u8> = (0..n as u8).map(|i| b'A' + i % 26).collect();
            assert!(same(&a, &a.clone()), "{n}");
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 1;
                assert!(!same(&a, &b), "{n} {i}");
            }
            assert!(!same(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
    }
}
