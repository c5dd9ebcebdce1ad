//! Compiles the C side of the benchmarks (`c/workloads.c`, and the raw
//! libev servers of `c/servers.c`) against the
//! headers libev-sys generated, so it sees exactly the defines libev was
//! built with. libev itself is not compiled again: the C workloads call the
//! `ev_*` functions in libev-sys's static archive.

use std::env;
use std::path::PathBuf;

const SOURCES: [&str; 3] = ["c/http_server.c", "c/servers.c", "c/workloads.c"];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    // Set by libev-sys (`links = "ev"`, `cargo:include=...`): holds
    // `ev_sys.h`, `ev_sys_config.h` and `ev.h`.
    let include =
        env::var_os("DEP_EV_INCLUDE").expect("libev-sys exports DEP_EV_INCLUDE to direct dependents");

    for src in SOURCES {
        println!("cargo:rerun-if-changed={}", manifest.join(src).display());
    }
    println!("cargo:rerun-if-env-changed=DEP_EV_INCLUDE");

    // `cc` takes the optimisation level and debug info from cargo's profile.
    cc::Build::new()
        .include(&include)
        .files(SOURCES.map(|src| manifest.join(src)))
        .warnings(true)
        .extra_warnings(true)
        // libev's watcher macros type-pun through `ev_watcher *`; libev-sys
        // compiles libev itself with this flag for the same reason.
        .flag_if_supported("-fno-strict-aliasing")
        .compile("libev_bench_c");
}
