//! Numbers in decimal, formatted on the stack: several per request go into the environ, the
//! daemon's request head and the response's Content-Length, and a String each showed up in the
//! allocation counts.

/// A number in decimal, formatted on the stack.
pub struct Decimal {
    buf: [u8; 40],
    start: usize,
}

impl Decimal {
    pub fn new(n: i128) -> Decimal {
        let mut d = Decimal {
            buf: [0; 40],
            start: 40,
        };
        let mut m = n.unsigned_abs();
        loop {
            d.start -= 1;
            d.buf[d.start] = b'0' + (m % 10) as u8;
            m /= 10;
            if m == 0 {
                break;
            }
        }
        if n < 0 {
            d.start -= 1;
            d.buf[d.start] = b'-';
        }
        d
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_to_string() {
        for n in [
            0i128,
            7,
            10,
            1_700_000_000_123_456,
            -42,
            i64::MAX as i128,
            u128::MAX as i128,
        ] {
            assert_eq!(Decimal::new(n).as_bytes(), n.to_string().as_bytes());
        }
    }
}
