//! HTTP status codes as a type: what a handler answers is a [`Status`], never a bare integer
//! that might also mean "declined" or "retry".

/// An HTTP status code (100..=999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Status(u16);

impl Status {
    pub const OK: Status = Status(200);
    pub const BAD_REQUEST: Status = Status(400);
    pub const FORBIDDEN: Status = Status(403);
    pub const NOT_FOUND: Status = Status(404);
    pub const METHOD_NOT_ALLOWED: Status = Status(405);
    pub const LENGTH_REQUIRED: Status = Status(411);
    pub const INTERNAL_SERVER_ERROR: Status = Status(500);
    pub const BAD_GATEWAY: Status = Status(502);
    pub const SERVICE_UNAVAILABLE: Status = Status(503);
    pub const GATEWAY_TIMEOUT: Status = Status(504);

    /// A status code from another process or a library: `None` unless 100..=999.
    pub fn new(code: u16) -> Option<Status> {
        (100..=999).contains(&code).then_some(Status(code))
    }

    pub fn code(self) -> u16 {
        self.0
    }

    /// 4xx and 5xx: what a failed request may end with.
    pub fn is_error(self) -> bool {
        (400..=599).contains(&self.0)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Status;

    #[test]
    fn only_real_codes() {
        assert_eq!(Status::new(502), Some(Status::BAD_GATEWAY));
        assert_eq!(Status::new(0), None);
        assert_eq!(Status::new(1000), None);
        assert!(Status::BAD_GATEWAY.is_error() && !Status::OK.is_error());
    }
}
