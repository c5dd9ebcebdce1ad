//! What `hello_server` and `echo_server` share: the command line
//! `[ADDR] [--threads N|all] [--processes N|all]`, and serving a handler
//! on one `StreamServer`, a `ThreadedStreamServer` or a `PreforkServer`
//! until SIGINT or SIGTERM, which stop it gracefully (no new connections,
//! [`GRACE`] for those in flight, exit status 0).

use super::cli;
use libev::green;
use libev::green::net::TcpStream;
use libev::green::server::{PreforkServer, Processes, StreamServer, ThreadedStreamServer, Threads};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// How long connections in flight may take to finish after SIGINT or
/// SIGTERM.
pub const GRACE: Duration = Duration::from_secs(5);

/// How the server runs: on threads of this process, or on worker
/// processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Threads(Threads),
    Processes(Processes),
}

/// The command line `[ADDR] [--threads N|all] [--processes N|all]`, or
/// what `main` returns after `--help` or a bad argument.
pub fn args(program: &str, usage: &str) -> Result<(String, Scale), ExitCode> {
    cli::parse(program, usage, |mut args| {
        let (mut addr, mut threads, mut processes) = (None, None::<Threads>, None::<Processes>);
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            let mut value =
                || inline.clone().or_else(|| args.next()).ok_or(format!("{flag} needs a value: N or all"));
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--threads" => threads = Some(value()?.parse().map_err(|e: io::Error| e.to_string())?),
                "--processes" => processes = Some(value()?.parse().map_err(|e: io::Error| e.to_string())?),
                _ if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
                _ if addr.is_some() => return Err(format!("unexpected argument {arg:?}")),
                _ => addr = Some(arg),
            }
        }
        let scale = match (threads, processes) {
            (Some(t), Some(_)) if t != Threads::Count(1) => {
                return Err("--threads and --processes do not combine: choose one".to_owned());
            }
            (_, Some(p)) => Scale::Processes(p),
            (t, None) => Scale::Threads(t.unwrap_or(Threads::Count(1))),
        };
        Ok(Some((addr.unwrap_or_else(|| cli::DEFAULT_ADDR.to_owned()), scale)))
    })
}

/// Serves `factory`'s handler on `addr` (one per thread when `threads` is
/// more than 1, one per worker process with `--processes`) until stopped;
/// the exit status to return.
pub fn run<F, H>(program: &str, addr: &str, scale: Scale, factory: F) -> ExitCode
where
    F: Fn() -> H + Send + Sync + 'static,
    H: Fn(TcpStream, SocketAddr) + 'static,
{
    let served = match scale {
        Scale::Threads(Threads::Count(1)) => StreamServer::bind(addr, factory()).map(|server| {
            let stopper = server.clone();
            serve(server.local_addr(), move || stopper.stop(GRACE), || server.serve_forever())
        }),
        Scale::Threads(threads) => ThreadedStreamServer::bind(addr, threads, factory).map(|server| {
            let stopper = server.clone();
            serve(server.local_addr(), move || stopper.stop(GRACE), || server.serve_forever())
        }),
        // The parent handles SIGINT and SIGTERM itself: it stops every
        // worker gracefully.
        Scale::Processes(processes) => {
            PreforkServer::bind(addr, processes, factory).map(|server| -> io::Result<()> {
                let server = server.graceful_timeout(GRACE);
                println!("listening on {}", server.local_addr()?);
                io::stdout().flush()?;
                server.serve_forever()
            })
        }
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
