//! The examples speak to humans: `--help` prints a usage line and exits 0,
//! a bad argument exits 2 with the error and the usage line, and a failure
//! is printed with what failed ("cannot listen on ADDR: ...") and exits 1.

mod util;

use util::run_example;

/// The examples that take options or an address.
const EXAMPLES: [&str; 7] = [
    "hello_server",
    "echo_server",
    "http_hello",
    "ws_echo",
    "hello_server_loop",
    "green_inotify",
    "green_cat",
];

#[test]
fn help_prints_the_usage_and_exits_0() {
    for name in EXAMPLES {
        for flag in ["--help", "-h"] {
            let out = run_example(name, &[flag]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{name} {flag}: {:?}", out.status);
            assert!(stdout.starts_with(&format!("usage: {name}")), "{name} {flag}: {stdout}");
        }
    }
}

#[test]
fn a_bad_argument_exits_2_with_the_error_and_the_usage() {
    for name in EXAMPLES {
        let out = run_example(name, &["--no-such-option"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains("unknown option --no-such-option") || stderr.contains("unexpected argument"),
            "{name}: {stderr}"
        );
        assert!(stderr.contains(&format!("usage: {name}")), "{name}: {stderr}");
    }
    let out = run_example("http_hello", &["127.0.0.1:0", "extra"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_port_in_use_is_reported_in_words() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for (name, args) in [
        ("hello_server", &[][..]),
        ("hello_server", &["--threads", "2"]),
        ("echo_server", &["--processes", "2"]),
        ("echo_server", &[]),
        ("http_hello", &[]),
        ("ws_echo", &[]),
        ("hello_server_loop", &[]),
    ] {
        let out = run_example(name, &[&[addr.as_str()][..], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.starts_with(&format!("{name}: cannot listen on {addr}: ")), "{name}: {stderr}");
        assert!(stderr.to_lowercase().contains("in use"), "{name}: {stderr}");
        assert!(!stderr.contains("Os {"), "Display, not Debug: {stderr}");
    }
}

#[test]
fn a_bad_processes_option_exits_2_with_the_error_and_the_usage() {
    for name in ["hello_server", "echo_server"] {
        for (bad, says) in [
            (&["--processes", "0"][..], "processes: expected `all` or a positive number"),
            (&["--processes", "many"], "processes: expected `all` or a positive number"),
            (&["--processes=-1"], "processes: expected `all` or a positive number"),
            (&["--processes"], "--processes needs a value"),
            (&["--processes", "2", "--threads", "2"], "do not combine"),
        ] {
            let out = run_example(name, &[&["127.0.0.1:0"][..], bad].concat());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {bad:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{name} {bad:?} did not listen");
            assert!(stderr.contains(says), "{name} {bad:?}: {stderr}");
            assert!(stderr.contains(&format!("usage: {name}")), "{name} {bad:?}: {stderr}");
        }
    }
}
