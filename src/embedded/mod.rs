//! Embedded mode: Python inside the Apache children. `settings` starts Python in each child
//! (child_init) from the configuration the parent computed; `transport` lets the WSGI layer
//! read the request body from and write the response into the Apache request it runs in.

pub mod settings;
pub mod transport;

pub use settings::{child_exit, child_init, configure, version_component};
