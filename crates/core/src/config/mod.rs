//! Directive parsing and merging, in pure Rust: strings in, typed configuration or a precise
//! error message out. Apache is not visible here (src/apache calls in).

pub mod alias;
pub mod daemon;
pub mod directives;
pub mod groups;
pub mod model;
pub mod scripts;
pub mod tokenize;

pub use model::*;

/// A configuration record as Apache keeps one per server and per directory: a default (for a
/// server or directory without any of the module's directives) and the merge of a virtual
/// host's or directory's record over its parent's.
pub trait Merge: Default + 'static {
    fn merge(base: &Self, add: &Self) -> Self;
}

impl Merge for DirConfig {
    fn merge(base: &DirConfig, add: &DirConfig) -> DirConfig {
        DirConfig::merge(base, add)
    }
}
