//! Directive parsing and merging, in pure Rust: strings in, typed configuration or a precise
//! error message out. Apache is not visible here (src/apache calls in).

pub mod alias;
pub mod daemon;
pub mod directives;
pub mod groups;
pub mod model;
pub mod tokenize;

pub use model::*;
