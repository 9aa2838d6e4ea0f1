//! The request variables (CGI and mod_wsgi.* keys) on their way to the WSGI environ: one byte
//! arena plus an index, so that the ~45 variables of a request cost two allocations instead of
//! two each (the per-variable Strings showed up as a tenth of an embedded request's CPU).

use std::ops::Range;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environ {
    bytes: Vec<u8>,
    /// (key, value) ranges into `bytes`; keys are valid UTF-8.
    items: Vec<(Range<u32>, Range<u32>)>,
}

impl Environ {
    pub fn with_capacity(items: usize, bytes: usize) -> Environ {
        Environ {
            bytes: Vec::with_capacity(bytes),
            items: Vec::with_capacity(items),
        }
    }

    fn store(&mut self, b: &[u8]) -> Range<u32> {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(b);
        start..self.bytes.len() as u32
    }

    fn slice(&self, r: &Range<u32>) -> &[u8] {
        &self.bytes[r.start as usize..r.end as usize]
    }

    fn key_at(&self, i: usize) -> &str {
        // keys are stored from &str only
        std::str::from_utf8(self.slice(&self.items[i].0)).unwrap_or_default()
    }

    /// Appends a variable (a key already present is not replaced: use [`Environ::set`]).
    pub fn push(&mut self, key: &str, value: &[u8]) {
        let k = self.store(key.as_bytes());
        let v = self.store(value);
        self.items.push((k, v));
    }

    /// Appends `key` with the value `from` has (empty if `from` is absent), sharing its bytes.
    pub fn push_copy(&mut self, key: &str, from: &str) {
        let v = self
            .position(from)
            .map_or(0..0, |i| self.items[i].1.clone());
        let k = self.store(key.as_bytes());
        self.items.push((k, v));
    }

    fn position(&self, key: &str) -> Option<usize> {
        let key = key.as_bytes();
        self.items.iter().position(|(k, _)| self.slice(k) == key)
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.position(key).map(|i| self.slice(&self.items[i].1))
    }

    /// Replaces the value of `key` (or appends it).
    pub fn set(&mut self, key: &str, value: &[u8]) {
        match self.position(key) {
            Some(i) => {
                let v = self.store(value);
                self.items[i].1 = v;
            }
            None => self.push(key, value),
        }
    }

    /// Keeps the variables for which `keep(key)` is true.
    pub fn retain_keys(&mut self, keep: impl Fn(&str) -> bool) {
        let bytes = &self.bytes;
        self.items.retain(|(k, _)| {
            keep(std::str::from_utf8(&bytes[k.start as usize..k.end as usize]).unwrap_or_default())
        });
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + Clone {
        (0..self.items.len()).map(|i| (self.key_at(i), self.slice(&self.items[i].1)))
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> FromIterator<(K, V)> for Environ {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(it: I) -> Environ {
        let mut e = Environ::default();
        for (k, v) in it {
            e.push(k.as_ref(), v.as_ref());
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_get_set_retain_keep_order() {
        let mut e: Environ = [("A", "1"), ("PATH", "/bin"), ("B", "2")]
            .into_iter()
            .collect();
        e.set("A", b"one");
        e.set("C", b"3");
        e.retain_keys(|k| k != "PATH");
        let all: Vec<(&str, &[u8])> = e.iter().collect();
        assert_eq!(
            all,
            vec![("A", &b"one"[..]), ("B", &b"2"[..]), ("C", &b"3"[..])]
        );
        assert_eq!(e.get("B"), Some(&b"2"[..]));
        assert_eq!(e.get("PATH"), None);
        assert_eq!(e.len(), 3);
    }

    #[test]
    fn copied_values() {
        let mut e = Environ::default();
        e.push("SCRIPT_NAME", b"/app");
        e.push_copy("mod_wsgi.script_name", "SCRIPT_NAME");
        e.push_copy("mod_wsgi.path_info", "PATH_INFO");
        assert_eq!(e.get("mod_wsgi.script_name"), Some(&b"/app"[..]));
        assert_eq!(e.get("mod_wsgi.path_info"), Some(&b""[..]));
        assert_eq!(e.len(), 3);
    }
}
