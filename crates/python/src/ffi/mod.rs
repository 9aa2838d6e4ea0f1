//! The Python C-API layer: the only `unsafe` code of src/wsgi. Everything above it works with
//! owned [`object::Obj`] references while attached to an interpreter.

pub mod arenas;
pub mod dict;
pub mod error;
pub mod gil_cell;
pub mod input_type;
pub mod interp;
pub mod native;
pub mod object;
