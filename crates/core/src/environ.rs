//! The request variables (CGI and mod_wsgi.* keys) on their way to the WSGI environ: two
//! arenas (names, values) plus an index, so that the ~45 variables of a request cost three
//! allocations instead of two each (the per-variable Strings showed up as a tenth of an
//! embedded request's CPU). Names live in a `String`, so reading one back is a slice, not a
//! UTF-8 check (those checks were ~1 % of a daemon hello's CPU on the Apache side). A dropped
//! environ leaves its arenas to the next one made on the same thread.

use std::ops::Range;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environ {
    names: String,
    values: Vec<u8>,
    /// (name, value) ranges into `names` and `values`.
    items: Vec<(Range<u32>, Range<u32>)>,
}

impl Environ {
    /// Room for `items` variables holding `bytes` bytes of values: the arenas the last
    /// environ dropped on this thread left, when there are any.
    pub fn with_capacity(items: usize, bytes: usize) -> Environ {
        let (names, values, list) = SPARE
            .try_with(|s| s.take())
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut e = Environ {
            names,
            values,
            items: list,
        };
        e.names.reserve(items * 16);
        e.values.reserve(bytes);
        e.items.reserve(items);
        e
    }

    fn store_name(&mut self, name: &str) -> Range<u32> {
        let start = self.names.len() as u32;
        self.names.push_str(name);
        start..self.names.len() as u32
    }

    fn store_value(&mut self, b: &[u8]) -> Range<u32> {
        let start = self.values.len() as u32;
        self.values.extend_from_slice(b);
        start..self.values.len() as u32
    }

    fn name(&self, r: &Range<u32>) -> &str {
        &self.names[r.start as usize..r.end as usize]
    }

    fn value(&self, r: &Range<u32>) -> &[u8] {
        &self.values[r.start as usize..r.end as usize]
    }

    /// Appends a variable (a key already present is not replaced: use [`Environ::set`]).
    pub fn push(&mut self, key: &str, value: &[u8]) {
        let k = self.store_name(key);
        let v = self.store_value(value);
        self.items.push((k, v));
    }

    /// Appends `key` with the value `from` has (empty if `from` is absent), sharing its bytes.
    pub fn push_copy(&mut self, key: &str, from: &str) {
        let v = self
            .position(from)
            .map_or(0..0, |i| self.items[i].1.clone());
        let k = self.store_name(key);
        self.items.push((k, v));
    }

    /// The last variable named `key`: the one the environ dict keeps when a name repeats,
    /// and the one nearest the end, where Apache puts the CGI variables rwsgi looks up
    /// (after the request headers) and rwsgi appends mod_wsgi's.
    fn position(&self, key: &str) -> Option<usize> {
        // Lengths first, on the ranges: most names differ in length, and slicing the arena as
        // a `str` checks char boundaries (a full scan, for an absent key such as
        // CONTENT_LENGTH of a GET, was 1 % of an embedded hello's CPU).
        let names = self.names.as_bytes();
        let key = key.as_bytes();
        self.items.iter().rposition(|(k, _)| {
            (k.end - k.start) as usize == key.len()
                && &names[k.start as usize..k.end as usize] == key
        })
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.position(key).map(|i| self.value(&self.items[i].1))
    }

    /// Replaces the value of `key` (or appends it).
    pub fn set(&mut self, key: &str, value: &[u8]) {
        match self.position(key) {
            Some(i) => {
                let v = self.store_value(value);
                self.items[i].1 = v;
            }
            None => self.push(key, value),
        }
    }

    /// Keeps the variables for which `keep(key)` is true.
    pub fn retain_keys(&mut self, keep: impl Fn(&str) -> bool) {
        let names = &self.names;
        self.items
            .retain(|(k, _)| keep(&names[k.start as usize..k.end as usize]));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + Clone {
        (self.items.iter()).map(|(k, v)| (self.name(k), self.value(v)))
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

thread_local! {
    /// The arenas of the last environ dropped on this thread, emptied, for the next request's
    /// (three allocations of each request that builds one).
    static SPARE: std::cell::Cell<Option<Arenas>> = const { std::cell::Cell::new(None) };
}

/// An environ's buffers (a tuple, not an `Environ`: dropping one does not recycle it again).
type Arenas = (String, Vec<u8>, Vec<(Range<u32>, Range<u32>)>);

/// Arenas larger than this (a request with huge headers) are not kept.
const SPARE_MAX_BYTES: usize = 64 * 1024;

impl Drop for Environ {
    fn drop(&mut self) {
        if self.items.capacity() == 0 || self.values.capacity() > SPARE_MAX_BYTES {
            return;
        }
        self.names.clear();
        self.values.clear();
        self.items.clear();
        let spare = (
            std::mem::take(&mut self.names),
            std::mem::take(&mut self.values),
            std::mem::take(&mut self.items),
        );
        // (no spare during the thread's own exit: the arenas are then simply freed)
        let _ = SPARE.try_with(|s| s.set(Some(spare)));
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
    fn a_repeated_name_means_its_last_value() {
        let mut e: Environ = [("A", "1"), ("B", "2"), ("A", "3")].into_iter().collect();
        assert_eq!(e.get("A"), Some(&b"3"[..]));
        e.set("A", b"4");
        let last_a = e.iter().filter(|(k, _)| *k == "A").last();
        assert_eq!(last_a, Some(("A", &b"4"[..])));
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

    #[test]
    fn a_dropped_environs_arenas_serve_the_next_empty() {
        let mut e = Environ::with_capacity(4, 64);
        e.push("REQUEST_URI", &[b'x'; 4000]);
        let kept = e.values.capacity();
        drop(e);
        let next = Environ::with_capacity(4, 64);
        assert!(next.is_empty() && next.values.is_empty() && next.names.is_empty());
        assert_eq!(
            next.values.capacity(),
            kept,
            "the same buffer, not a fresh one"
        );
        assert_eq!(next.get("REQUEST_URI"), None);
    }
}
