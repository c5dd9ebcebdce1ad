//! Builds the bundled libev 4.33 with `cc` and, with the `bindgen` feature,
//! regenerates the Rust bindings from the same configuration.
//!
//! One list of preprocessor defines ([`defines`]) feeds the C compiler, the
//! generated header that dependents compile against (`DEP_EV_INCLUDE`), and
//! bindgen, so the Rust structs always describe the C that was compiled.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// The vendored C sources, in the fixed order they are listed to `cc`.
/// `ev.c` includes the backend files itself; they are inputs all the same.
const C_INPUTS: &[&str] = &[
    "ev.c",
    "ev.h",
    "ev_epoll.c",
    "ev_iouring.c",
    "ev_kqueue.c",
    "ev_linuxaio.c",
    "ev_poll.c",
    "ev_port.c",
    "ev_select.c",
    "ev_vars.h",
    "ev_win32.c",
    "ev_wrap.h",
];

/// Our C shim: layout facts and libev's function-like macros, compiled with
/// the library so tests compare Rust against what the C compiler saw.
const SHIM: &str = "shim/abi.c";

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = Target::from_env();
    let defines = defines(&target);
    let libev = manifest.join("libev");
    // The experimental Linux backends depend on the kernel headers found:
    // tell the crate's own tests what was compiled in.
    for name in ["EV_USE_LINUXAIO", "EV_USE_IOURING"] {
        let value = defines.iter().find(|(n, _)| *n == name).map_or("0", |(_, v)| *v);
        println!("cargo:rustc-env=LIBEV_SYS_{name}={value}");
    }

    for file in C_INPUTS {
        println!("cargo:rerun-if-changed={}", libev.join(file).display());
    }
    println!("cargo:rerun-if-changed={}", manifest.join(SHIM).display());
    println!("cargo:rerun-if-env-changed=LIBEV_SYS_SANITIZE");

    let include = out.join("include");
    write_headers(&libev, &include, &defines);
    compile(&libev, &manifest, &defines);
    bindings::emit(&manifest, &include, &out);

    // Dependents (benchmarks in C, other -sys crates) compile against the
    // same configuration through `#include "ev_sys.h"`.
    println!("cargo:include={}", include.display());
}

/// The facts about the target that choose the configuration.
struct Target {
    os: String,
    family: String,
    pointer_width: String,
}

impl Target {
    fn from_env() -> Self {
        let var = |name: &str| env::var(name).unwrap_or_default();
        Target {
            os: var("CARGO_CFG_TARGET_OS"),
            family: var("CARGO_CFG_TARGET_FAMILY"),
            pointer_width: var("CARGO_CFG_TARGET_POINTER_WIDTH"),
        }
    }

    fn is_kqueue_os(&self) -> bool {
        matches!(self.os.as_str(), "macos" | "ios" | "freebsd" | "netbsd" | "openbsd" | "dragonfly")
    }

    fn is_linux(&self) -> bool {
        matches!(self.os.as_str(), "linux" | "android")
    }
}

/// The one list of defines. Everything that changes a struct in `ev.h`
/// (`EV_MULTIPLICITY`, `EV_COMMON`, priorities, the `*_ENABLE` flags) is
/// spelled out rather than left to libev's defaults, and so are the backends.
fn defines(target: &Target) -> Vec<(&'static str, &'static str)> {
    let supported = target.family.contains("unix")
        && target.pointer_width == "64"
        && (target.is_linux() || target.is_kqueue_os());
    if !supported {
        panic!(
            "libev-sys supports 64-bit Linux, Android, macOS, iOS and the BSDs; \
             target os `{}`, family `{}`, pointer width `{}` is not supported \
             (the committed bindings describe 64-bit Unix layouts only)",
            target.os, target.family, target.pointer_width
        );
    }

    let mut d = vec![
        // Configure by defines alone: no config.h, no autoconf.
        ("EV_STANDALONE", "1"),
        ("EV_COMPAT3", "0"),
        ("EV_FEATURES", "0x7f"),
        ("EV_MULTIPLICITY", "1"),
        ("EV_MINPRI", "(-2)"),
        ("EV_MAXPRI", "2"),
        ("EV_VERIFY", "1"),
        // All 13 watcher types (io and timer cannot be switched off).
        ("EV_PERIODIC_ENABLE", "1"),
        ("EV_SIGNAL_ENABLE", "1"),
        ("EV_CHILD_ENABLE", "1"),
        ("EV_STAT_ENABLE", "1"),
        ("EV_IDLE_ENABLE", "1"),
        ("EV_PREPARE_ENABLE", "1"),
        ("EV_CHECK_ENABLE", "1"),
        ("EV_EMBED_ENABLE", "1"),
        ("EV_FORK_ENABLE", "1"),
        ("EV_CLEANUP_ENABLE", "1"),
        ("EV_ASYNC_ENABLE", "1"),
        ("EV_WALK_ENABLE", "0"),
        // Clocks.
        ("EV_USE_MONOTONIC", "1"),
        ("EV_USE_REALTIME", "0"),
        ("EV_USE_NANOSLEEP", "1"),
        ("EV_USE_FLOOR", "0"),
        // Portable backends.
        ("EV_USE_SELECT", "1"),
        ("EV_USE_POLL", "1"),
        // Never: Solaris ports.
        ("EV_USE_PORT", "0"),
    ];
    let linux = if target.is_linux() { "1" } else { "0" };
    let kqueue = if target.is_kqueue_os() { "1" } else { "0" };
    d.extend([
        // Linux AIO and io_uring: compiled in on Linux, selectable by asking
        // for them (libev 4.33 marks both experimental and leaves them out
        // of its recommended backends, so a loop never picks them by
        // itself). Each needs kernel headers (linux-libc-dev); without them
        // the backend is left out with a build warning, not a failure.
        ("EV_USE_LINUXAIO", linux_backend(target, "Linux AIO", LINUXAIO_HEADERS)),
        ("EV_USE_IOURING", linux_backend(target, "io_uring", IOURING_HEADERS)),
        ("EV_USE_EPOLL", linux),
        ("EV_USE_INOTIFY", linux),
        ("EV_USE_SIGNALFD", linux),
        ("EV_USE_EVENTFD", linux),
        ("EV_USE_TIMERFD", linux),
        ("EV_USE_KQUEUE", kqueue),
    ]);
    d
}

/// The kernel headers `ev_linuxaio.c` includes.
const LINUXAIO_HEADERS: &[&str] = &["linux/aio_abi.h"];
/// The kernel headers `ev.c` and `ev_iouring.c` include for io_uring.
const IOURING_HEADERS: &[&str] = &["linux/fs.h", "linux/types.h", "linux/version.h"];

/// `"1"` when `target` is Linux and the C compiler finds `headers`, else
/// `"0"` (with a cargo warning naming the missing headers on Linux).
fn linux_backend(target: &Target, name: &str, headers: &[&str]) -> &'static str {
    if !target.is_linux() {
        return "0";
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let probe = out.join(format!("probe_{}.c", name.replace(' ', "_")));
    let mut text = String::new();
    for h in headers {
        writeln!(text, "#include <{h}>").unwrap();
    }
    text.push_str("int libev_sys_probe;\n");
    fs::write(&probe, text).expect("write header probe");
    let found = cc::Build::new()
        .file(&probe)
        .cargo_metadata(false)
        .warnings(false)
        .try_compile(&format!("probe_{}", name.replace(' ', "_")))
        .is_ok();
    if found {
        "1"
    } else {
        println!(
            "cargo:warning=libev-sys: the {name} backend is left out: the kernel headers {} \
             were not found (Debian: apt-get install linux-libc-dev)",
            headers.join(", ")
        );
        "0"
    }
}

/// Writes `ev_sys_config.h` (the defines) and `ev_sys.h` (defines, then
/// `ev.h`) with a copy of `ev.h` into `include`, for bindgen and dependents.
fn write_headers(libev: &Path, include: &Path, defines: &[(&str, &str)]) {
    fs::create_dir_all(include).expect("create OUT_DIR/include");
    let mut config =
        String::from("/* generated by libev-sys/build.rs: the defines libev was compiled with */\n");
    config.push_str("#ifndef EV_SYS_CONFIG_H\n#define EV_SYS_CONFIG_H\n");
    for (name, value) in defines {
        writeln!(config, "#ifndef {name}\n# define {name} {value}\n#endif").unwrap();
    }
    config.push_str("#endif\n");
    fs::write(include.join("ev_sys_config.h"), config).expect("write ev_sys_config.h");
    fs::write(
        include.join("ev_sys.h"),
        "/* generated by libev-sys/build.rs */\n#include \"ev_sys_config.h\"\n#include \"ev.h\"\n",
    )
    .expect("write ev_sys.h");
    fs::copy(libev.join("ev.h"), include.join("ev.h")).expect("copy ev.h");
}

/// Compiles libev and the shim into a static archive linked into this crate.
fn compile(libev: &Path, manifest: &Path, defines: &[(&str, &str)]) {
    let mut build = cc::Build::new();
    build
        .include(libev)
        .file(libev.join("ev.c"))
        .file(manifest.join(SHIM))
        // libev's own code is not ours to fix: its warnings are noise here.
        .warnings(false)
        .extra_warnings(false)
        // Keep the symbols out of any shared object we end up in, so a
        // system libev loaded by something else cannot collide with ours.
        .flag_if_supported("-fvisibility=hidden")
        .flag_if_supported("-fno-strict-aliasing");
    for (name, value) in defines {
        build.define(name, Some(*value));
    }
    // libev's assert()s abort the process on misuse, including misuse a
    // safe wrapper cannot rule out (an fd closed under an active watcher:
    // without the assert libev reports EV_ERROR to the watcher, as its
    // manual describes). Off unless the `assertions` feature asks for them.
    if env::var_os("CARGO_FEATURE_ASSERTIONS").is_none() {
        build.define("NDEBUG", None);
    }
    match env::var("LIBEV_SYS_SANITIZE").as_deref() {
        Ok("address") => {
            build.flag("-fsanitize=address").flag("-fno-omit-frame-pointer");
        }
        Ok("") | Err(_) => {}
        Ok(other) => panic!("LIBEV_SYS_SANITIZE={other}: only `address` is supported"),
    }
    build.compile("ev_bundled");
}

#[cfg(not(feature = "bindgen"))]
mod bindings {
    use std::path::Path;

    /// Without the `bindgen` feature the committed `src/bindings/generated.rs` is used
    /// as it is; nothing to generate.
    pub fn emit(_manifest: &Path, _include: &Path, _out: &Path) {}
}

#[cfg(feature = "bindgen")]
mod bindings {
    use std::env;
    use std::fs;
    use std::path::Path;

    /// Regenerates the bindings into `OUT_DIR/bindings.rs` (used by the crate
    /// when the feature is on) and, when `LIBEV_SYS_UPDATE_BINDINGS=1`, also
    /// over the committed `src/bindings/generated.rs`.
    pub fn emit(manifest: &Path, include: &Path, out: &Path) {
        println!("cargo:rerun-if-env-changed=LIBEV_SYS_UPDATE_BINDINGS");
        let generated = bindgen::Builder::default()
            .header(include.join("ev_sys.h").to_str().expect("utf-8 OUT_DIR"))
            .clang_arg(format!("-I{}", include.display()))
            .allowlist_function("ev_.*")
            .allowlist_type("ev_.*")
            .allowlist_var("EV.*")
            // `struct stat` comes from libc, and `ev_stat` (which embeds it)
            // is written by hand in `src/stat.rs` so the committed file holds
            // on every 64-bit Unix; `ev_any_watcher` embeds `ev_stat`.
            .blocklist_type("stat")
            .blocklist_type("ev_statdata")
            .blocklist_type("ev_stat")
            .blocklist_type("ev_any_watcher")
            .blocklist_type("sig_atomic_t")
            .blocklist_type("__.*")
            .blocklist_type("timespec")
            // The configuration itself differs per target (backends): keep it
            // out of the committed file. `EV_MINPRI`/`EV_MAXPRI` stay.
            .blocklist_var("EV_USE_.*|EV_.*_ENABLE|EV_FEATURES?.*|EV_STANDALONE|EV_COMPAT3|EV_VERIFY|EV_PROTOTYPES|EV_MULTIPLICITY")
            // `static inline` in ev.h, so not linkable: see `src/macros.rs`.
            .blocklist_function("ev_default_loop_uc_")
            .blocklist_function("ev_is_default_loop")
            .use_core()
            .ctypes_prefix("core::ffi")
            .layout_tests(true)
            .derive_default(false)
            .derive_debug(true)
            .merge_extern_blocks(true)
            .generate_comments(true)
            .sort_semantically(true)
            .generate()
            .expect("bindgen failed on ev_sys.h");
        let text = format!(
            "// Generated by bindgen from libev 4.33's ev.h with libev-sys's defines.\n\
             // Regenerate: LIBEV_SYS_UPDATE_BINDINGS=1 cargo build -p libev-sys --features bindgen\n\n{}",
            generated
        );
        fs::write(out.join("bindings.rs"), &text).expect("write bindings");
        if env::var("LIBEV_SYS_UPDATE_BINDINGS").as_deref() == Ok("1") {
            fs::write(manifest.join("src/bindings/generated.rs"), &text)
                .expect("update src/bindings/generated.rs");
        }
    }
}
