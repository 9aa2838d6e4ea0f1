//! The exchange the current thread is serving, so `sys.stdout`/`sys.stderr` output during a
//! request is logged with that request's context.

use super::exchange::Exchange;
use std::cell::RefCell;
use std::sync::Arc;

thread_local! {
    static CURRENT: RefCell<Option<Arc<Exchange>>> = const { RefCell::new(None) };
}

pub fn exchange() -> Option<Arc<Exchange>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Makes `ex` current until the guard is dropped.
pub struct Scope(Option<Arc<Exchange>>);

impl Scope {
    pub fn enter(ex: &Arc<Exchange>) -> Scope {
        Scope(CURRENT.with(|c| c.borrow_mut().replace(ex.clone())))
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let prev = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}
