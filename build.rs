//! Compiles the C half of the interop tests (`tests/c/interop.c`): a
//! stand-in for a C library built on libev, against the headers libev-sys
//! generated (so it sees the defines libev was built with), calling the
//! `ev_*` functions in libev-sys's archive.

use std::env;
use std::path::PathBuf;

const SOURCE: &str = "tests/c/interop.c";

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let include =
        env::var_os("DEP_EV_INCLUDE").expect("libev-sys exports DEP_EV_INCLUDE to direct dependents");
    println!("cargo:rerun-if-changed={}", manifest.join(SOURCE).display());
    println!("cargo:rerun-if-env-changed=DEP_EV_INCLUDE");
    cc::Build::new()
        .include(&include)
        .file(manifest.join(SOURCE))
        .warnings(true)
        .extra_warnings(true)
        .flag_if_supported("-fno-strict-aliasing")
        .compile("libev_rs_interop");
}
