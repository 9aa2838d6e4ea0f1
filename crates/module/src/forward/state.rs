//! Where the relay of one response stands, and what each frame from the daemon means for it —
//! decided without I/O, so every transition is a unit test (as hyper's `proto/h1/conn.rs`
//! separates its state from its socket).

use rwsgi_core::ipc::frame::{FLAG_END, FLAG_SHM, Header, Kind};

/// How far the response has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No response head yet. `body_requested`: the daemon asked for request body, so the
    /// request has started and can no longer be sent elsewhere.
    AwaitingHead { body_requested: bool },
    /// The head is set; `started`: body bytes (or a flush) went towards the client.
    Body { started: bool },
}

impl Phase {
    pub const START: Phase = Phase::AwaitingHead {
        body_requested: false,
    };

    /// Whether anything of the response reached Apache's output filters (then a failure can
    /// only be a visibly broken response, not an error status).
    pub fn body_started(self) -> bool {
        matches!(self, Phase::Body { started: true })
    }
}

/// What to do with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The daemon let go of the request unstarted (it is restarting): send it elsewhere.
    Retry,
    /// Read up to this many body bytes for the daemon.
    FeedBody,
    /// The daemon consumed a slice of the request ring.
    Credit,
    /// The status line and headers; `whole`: the frame is the whole response, its head
    /// and then all of its body.
    Head {
        whole: bool,
    },
    /// Response body bytes; `in_ring`: a slice of the response ring; `last`: nothing follows.
    Body {
        in_ring: bool,
        last: bool,
    },
    Flush,
    /// A file to send (its descriptor travels with the frame).
    File,
    End,
    /// The daemon ended the request with an error status.
    Abort,
    /// A line for the error log, in this request's context.
    Log,
    /// Not allowed here: the response fails (502, or broken if started) and the connection,
    /// whose state is unknown, is dropped.
    Violation(&'static str),
}

/// The meaning of a frame with header `h` for the request with id `id`, in `phase`, and the
/// phase after it.
pub fn step(phase: Phase, h: &Header, id: u32) -> (Step, Phase) {
    use Kind::*;
    let awaiting = matches!(phase, Phase::AwaitingHead { .. });
    // Connection-level frames carry id 0; everything else must be this request's.
    let connection_level = h.request_id == 0 && matches!(h.kind, Goodbye | Abort);
    if h.request_id != id && !connection_level {
        // A line an earlier request logged after its end changes nothing: it is logged.
        if h.kind == Log {
            return (Step::Log, phase);
        }
        return (Step::Violation("a frame for another request"), phase);
    }
    let started = Phase::Body { started: true };
    match (h.kind, phase) {
        (
            Goodbye,
            Phase::AwaitingHead {
                body_requested: false,
            },
        ) => (Step::Retry, phase),
        (Goodbye, _) => (Step::Violation("Goodbye in the middle of a request"), phase),
        (BodyWant, Phase::AwaitingHead { .. }) => (
            Step::FeedBody,
            Phase::AwaitingHead {
                body_requested: true,
            },
        ),
        // The application may read its input after starting the response.
        (BodyWant, _) => (Step::FeedBody, phase),
        (Credit, _) => (Step::Credit, phase),
        (ResponseHead, Phase::AwaitingHead { .. }) => (
            Step::Head {
                whole: h.flags & FLAG_END != 0,
            },
            Phase::Body { started: false },
        ),
        (ResponseHead, _) => (Step::Violation("a second response head"), phase),
        (ResponseBody | ResponseFlush | ResponseFile | ResponseEnd, _) if awaiting => {
            (Step::Violation("a body before the response head"), phase)
        }
        (ResponseBody, _) => (
            Step::Body {
                in_ring: h.flags & FLAG_SHM != 0,
                last: h.flags & FLAG_END != 0,
            },
            started,
        ),
        (ResponseFlush, _) => (Step::Flush, started),
        (ResponseFile, _) => (Step::File, started),
        (ResponseEnd, _) => (Step::End, phase),
        (Abort, _) => (Step::Abort, phase),
        (Log, _) => (Step::Log, phase),
        (Hello | HelloAck | RequestHead | Body | BodyEnd, _) => {
            (Step::Violation("a frame only an Apache child sends"), phase)
        }
    }
}

/// What may still go out of a response body: never more than its declared length.
#[derive(Debug)]
pub struct Budget {
    declared: Option<u64>,
    sent: u64,
    /// HEAD, 1xx, 204, 304: no body follows whatever Content-Length says.
    bodiless: bool,
    over: bool,
}

/// How much of a chunk may be sent, and whether the chunk went past the declared length.
#[derive(Debug, PartialEq, Eq)]
pub struct Admitted {
    pub len: u64,
    pub over: bool,
}

/// A body that ended before its declared length.
#[derive(Debug, PartialEq, Eq)]
pub struct Short {
    pub sent: u64,
    pub declared: u64,
}

impl Budget {
    pub fn new(declared: Option<u64>, bodiless: bool) -> Budget {
        Budget {
            declared,
            sent: 0,
            bodiless,
            over: false,
        }
    }

    pub fn admit(&mut self, n: u64) -> Admitted {
        let room = self.declared.map_or(u64::MAX, |d| d - self.sent);
        let len = n.min(room);
        self.sent += len;
        self.over |= n > room;
        Admitted {
            len,
            over: n > room,
        }
    }

    pub fn over(&self) -> bool {
        self.over
    }

    pub fn complete(&self) -> Result<(), Short> {
        match self.declared {
            Some(d) if self.sent < d && !self.bodiless => Err(Short {
                sent: self.sent,
                declared: d,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(kind: Kind, id: u32, flags: u16) -> Header {
        Header {
            kind,
            flags,
            request_id: id,
            len: 0,
        }
    }

    #[test]
    fn a_request_turned_away_unstarted_is_retried() {
        assert_eq!(
            step(Phase::START, &h(Kind::Goodbye, 0, 0), 7).0,
            Step::Retry
        );
        // once the daemon read the body, the request has started: no retry
        let (s, p) = step(Phase::START, &h(Kind::BodyWant, 7, 0), 7);
        assert_eq!(s, Step::FeedBody);
        assert!(matches!(
            step(p, &h(Kind::Goodbye, 0, 0), 7).0,
            Step::Violation(_)
        ));
    }

    #[test]
    fn head_then_body_then_end() {
        let (s, p) = step(Phase::START, &h(Kind::ResponseHead, 7, 0), 7);
        assert_eq!(
            (s, p),
            (Step::Head { whole: false }, Phase::Body { started: false })
        );
        // a whole response in one frame
        let (s, _) = step(Phase::START, &h(Kind::ResponseHead, 7, FLAG_END), 7);
        assert_eq!(s, Step::Head { whole: true });
        assert!(matches!(
            step(p, &h(Kind::ResponseHead, 7, FLAG_END), 7).0,
            Step::Violation(_)
        ));
        let (s, p) = step(p, &h(Kind::ResponseBody, 7, FLAG_SHM), 7);
        assert_eq!(
            s,
            Step::Body {
                in_ring: true,
                last: false
            }
        );
        assert!(p.body_started());
        let (s, _) = step(p, &h(Kind::ResponseBody, 7, FLAG_END), 7);
        assert_eq!(
            s,
            Step::Body {
                in_ring: false,
                last: true
            }
        );
        assert_eq!(step(p, &h(Kind::ResponseEnd, 7, 0), 7).0, Step::End);
    }

    #[test]
    fn protocol_violations() {
        let body = Phase::Body { started: false };
        for (phase, kind, id) in [
            (Phase::START, Kind::ResponseBody, 7),
            (Phase::START, Kind::ResponseEnd, 7),
            (Phase::START, Kind::ResponseFile, 7),
            (body, Kind::ResponseHead, 7),
            (body, Kind::Goodbye, 0),
            (body, Kind::Hello, 7),
            (body, Kind::RequestHead, 7),
            // a stale frame of an earlier request on this connection
            (body, Kind::ResponseBody, 6),
            (Phase::START, Kind::ResponseHead, 6),
        ] {
            assert!(
                matches!(step(phase, &h(kind, id, 0), 7).0, Step::Violation(_)),
                "{kind:?} id {id} in {phase:?}"
            );
        }
        // the process aborting whatever is in progress (id 0) is allowed
        assert_eq!(step(body, &h(Kind::Abort, 0, 0), 7).0, Step::Abort);
        // a late log line of an earlier request is only logged
        assert_eq!(step(Phase::START, &h(Kind::Log, 6, 0), 7).0, Step::Log);
    }

    #[test]
    fn never_more_than_declared() {
        let mut b = Budget::new(Some(10), false);
        assert_eq!(
            b.admit(4),
            Admitted {
                len: 4,
                over: false
            }
        );
        assert_eq!(
            b.complete(),
            Err(Short {
                sent: 4,
                declared: 10
            })
        );
        assert_eq!(
            b.admit(6),
            Admitted {
                len: 6,
                over: false
            }
        );
        assert_eq!(b.complete(), Ok(()));
        assert_eq!(b.admit(1), Admitted { len: 0, over: true });
        assert!(b.over());
        let mut b = Budget::new(Some(3), false);
        assert_eq!(b.admit(5), Admitted { len: 3, over: true });
    }

    #[test]
    fn undeclared_and_bodiless() {
        let mut b = Budget::new(None, false);
        assert_eq!(
            b.admit(1 << 40),
            Admitted {
                len: 1 << 40,
                over: false
            }
        );
        assert_eq!(b.complete(), Ok(()));
        assert_eq!(Budget::new(Some(7), true).complete(), Ok(()));
    }
}
