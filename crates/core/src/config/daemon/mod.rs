//! `WSGIDaemonProcess name [option=value ...]`: one daemon process group, typed, with
//! mod_wsgi's defaults ([`model`]); parsing, with values checked more strictly than mod_wsgi's
//! `atoi()` (`threads=x` is an error here, 0 there) ([`parse`]); which group a request may
//! use and the server-wide uniqueness of names ([`resolve`]).

mod model;
mod parse;
mod resolve;

pub use model::*;
pub use parse::parse;
pub use resolve::*;

#[cfg(test)]
mod tests;
