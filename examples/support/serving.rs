//! What `hello_server` and `echo_server` share: the command line
//! `[ADDR] [--threads N|all]`, and serving a handler on one
//! `StreamServer` or a `ThreadedStreamServer` until SIGINT or SIGTERM,
//! which stop it gracefully (no new connections, [`GRACE`] for those in
//! flight, exit status 0).

use super::cli;
use libev::green;
use libev::green::net::TcpStream;
use libev::green::server::{StreamServer, ThreadedStreamServer, Threads};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// How long connections in flight may take to finish after SIGINT or
/// SIGTERM.
pub const GRACE: Duration = Duration::from_secs(5);

/// The command line `[ADDR] [--threads N|all]`, or what `main` returns
/// after `--help` or a bad argument.
pub fn args(program: &str, usage: &str) -> Result<(String, Threads), ExitCode> {
    cli::parse(program, usage, |mut args| {
        let (mut addr, mut threads) = (None, Threads::Count(1));
        while let Some(arg) = args.next() {
            let value = match arg.as_str() {
                "-h" | "--help" => return Ok(None),
                "--threads" => Some(args.next().ok_or("--threads needs a value: N or all")?),
                a => a.strip_prefix("--threads=").map(str::to_owned),
            };
            match value {
                Some(n) => threads = n.parse().map_err(|e: io::Error| e.to_string())?,
                None if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
                None if addr.is_some() => return Err(format!("unexpected argument {arg:?}")),
                None => addr = Some(arg),
            }
        }
        Ok(Some((addr.unwrap_or_else(|| cli::DEFAULT_ADDR.to_owned()), threads)))
    })
}

/// Serves `factory`'s handler on `addr` (one per thread when `threads` is
/// more than 1) until stopped; the exit status to return.
pub fn run<F, H>(program: &str, addr: &str, threads: Threads, factory: F) -> ExitCode
where
    F: Fn() -> H + Send + Sync + 'static,
    H: Fn(TcpStream, SocketAddr) + 'static,
{
    let served = if threads == Threads::Count(1) {
        StreamServer::bind(addr, factory()).map(|server| {
            let stopper = server.clone();
            serve(server.local_addr(), move || stopper.stop(GRACE), || server.serve_forever())
        })
    } else {
        ThreadedStreamServer::bind(addr, threads, factory).map(|server| {
            let stopper = server.clone();
            serve(server.local_addr(), move || stopper.stop(GRACE), || server.serve_forever())
        })
    };
    match served {
        Err(e) => cli::fail(program, format_args!("cannot listen on {addr}"), e),
        Ok(Err(e)) => cli::fail(program, "serving", e),
        Ok(Ok(())) => ExitCode::SUCCESS,
    }
}

/// SIGINT (Ctrl-C) and SIGTERM call `stop`, which stops accepting, gives
/// the connections in flight GRACE to finish, and makes `serve_forever`
/// return Ok.
fn serve(
    addr: io::Result<SocketAddr>,
    stop: impl Fn() + Clone + 'static,
    serve_forever: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    let _int = green::signal::signal_handler(libc::SIGINT, stop.clone())?;
    let _term = green::signal::signal_handler(libc::SIGTERM, stop)?;
    println!("listening on {}", addr?);
    io::stdout().flush()?;
    serve_forever()
}
