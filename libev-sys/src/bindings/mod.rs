//! bindgen's output for `ev.h`, committed in `generated.rs` (or freshly
//! generated into `OUT_DIR` with the `bindgen` feature). All lint allowances
//! for generated code live here.

#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    missing_docs,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]

use crate::{ev_stat, sig_atomic_t};

#[cfg(not(feature = "bindgen"))]
include!("generated.rs");
#[cfg(feature = "bindgen")]
include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
