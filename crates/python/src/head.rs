//! A validated response head, its text in one buffer: a `String` for the status line and for
//! every header name and value was five of a hello request's ~27 heap allocations.

use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// The status line, then each header's name and value, one after another.
    text: String,
    status_line: Range<usize>,
    headers: Vec<(Range<usize>, Range<usize>)>,
    /// The application's Content-Length, if it set one.
    pub content_length: Option<u64>,
    /// The application sent `Connection: close`: the connection ends after this response.
    pub close_connection: bool,
    /// Hop-by-hop headers the application sent, not passed on (names as sent).
    pub dropped: Vec<String>,
}

/// Room per header before the first growth: names and values of a typical response.
const HEADER_ROOM: usize = 48;

impl ResponseHead {
    /// `status_line` as the application gave it ("200 OK"); `headers`: how many will follow.
    pub fn new(status: u16, status_line: &str, headers: usize) -> ResponseHead {
        let mut text = String::with_capacity(status_line.len() + headers * HEADER_ROOM);
        let status_line = push(&mut text, status_line);
        ResponseHead {
            status,
            text,
            status_line,
            headers: Vec::with_capacity(headers),
            content_length: None,
            close_connection: false,
            dropped: Vec::new(),
        }
    }

    pub fn push_header(&mut self, name: &str, value: &str) {
        let name = push(&mut self.text, name);
        let value = push(&mut self.text, value);
        self.headers.push((name, value));
    }

    /// The whole status line as the application gave it ("200 OK").
    pub fn status_line(&self) -> &str {
        self.at(&self.status_line)
    }

    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.headers.iter().map(|(k, v)| (self.at(k), self.at(v)))
    }

    fn at(&self, r: &Range<usize>) -> &str {
        &self.text[r.clone()]
    }
}

/// Appends `s`; its range in `text`.
fn push(text: &mut String, s: &str) -> Range<usize> {
    let start = text.len();
    text.push_str(s);
    start..text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_reads_back_as_given() {
        let mut h = ResponseHead::new(200, "200 OK", 1);
        h.push_header("Content-Type", "text/plain");
        h.push_header("X-Empty", "");
        h.push_header("Set-Cookie", "a=\u{e9}");
        assert_eq!(h.status_line(), "200 OK");
        assert_eq!(
            h.headers().collect::<Vec<_>>(),
            [
                ("Content-Type", "text/plain"),
                ("X-Empty", ""),
                ("Set-Cookie", "a=\u{e9}")
            ]
        );
    }
}
