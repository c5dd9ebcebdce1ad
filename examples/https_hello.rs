//! A keep-alive HTTPS server answering every request with
//! `Hello, world!`: `rustls` (pure Rust TLS, no OpenSSL) over green
//! sockets, one greenlet per connection, every connection on one thread.
//! rustls's blocking `StreamOwned` is written against `std::io::{Read,
//! Write}`; over a green `TcpStream` its waits park only the
//! connection's greenlet (this project's answer to gevent's
//! `StreamServer(..., ssl_context=)`).
//!
//! ```text
//! cargo run --release --example https_hello [-- [ADDR] [--cert FILE --key FILE]]
//! ```
//!
//! ADDR defaults to 127.0.0.1:8443; port 0 picks a free port. Without
//! `--cert`/`--key` the server makes a self-signed certificate for
//! `localhost` and `127.0.0.1` at start (with `rcgen`), which clients must
//! be told to accept (`curl -k`). The server prints one line with the
//! address once it listens.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/hello_http.rs"]
mod hello_http;

use libev::green::net::{Shutdown, TcpStream};
use libev::green::server::StreamServer;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

const USAGE: &str = "\
usage: https_hello [ADDR] [--cert FILE --key FILE]

A keep-alive HTTPS server answering `Hello, world!`, with rustls on green
sockets, every connection on one thread.

  ADDR          where to listen (default 127.0.0.1:8443; port 0 picks one)
  --cert FILE   the certificate chain, PEM
  --key FILE    its private key, PEM (PKCS#8, PKCS#1 or SEC1)
  -h, --help    print this help

Without --cert and --key the server makes a self-signed certificate for
localhost and 127.0.0.1 at start: try `curl -k https://ADDR/`.
";

/// A client must finish its handshake within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a client's input is read (and dropped) before closing.
const DRAIN_BYTES: usize = 64 * 1024;
/// How long a client may take to finish sending before the close.
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// What the command line asks for.
struct Args {
    addr: String,
    cert: Option<String>,
    key: Option<String>,
}

/// `Ok(None)` when the help was asked for.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args { addr: "127.0.0.1:8443".to_owned(), cert: None, key: None };
    let mut addr_seen = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--cert" => parsed.cert = Some(args.next().ok_or("--cert needs a file")?),
            "--key" => parsed.key = Some(args.next().ok_or("--key needs a file")?),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            addr if !addr_seen => {
                parsed.addr = addr.to_owned();
                addr_seen = true;
            }
            extra => return Err(format!("unexpected argument {extra:?}")),
        }
    }
    Ok(Some(parsed))
}

/// The server's TLS configuration: the certificate from the files given,
/// or a new self-signed one.
fn tls_config(args: &Args) -> Result<Arc<ServerConfig>, String> {
    let (chain, key) = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{cert}: {e}"))?;
            if chain.is_empty() {
                return Err(format!("{cert}: no certificate in the file"));
            }
            (chain, PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{key}: {e}"))?)
        }
        (None, None) => {
            let made = rcgen::generate_simple_self_signed(["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(|e| format!("making a certificate: {e}"))?;
            eprintln!(
                "https_hello: no --cert/--key: serving a self-signed certificate for localhost and 127.0.0.1"
            );
            let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
            (vec![made.cert.der().clone()], key.into())
        }
        _ => return Err("--cert and --key go together".to_owned()),
    };
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Runs one connection: the handshake (bounded in time), the requests,
/// then TLS's close_notify. Closing a socket with unread input makes the
/// kernel answer with a reset, which can destroy the last reply before the
/// client reads it; so the sending side is shut down first and what the
/// client still sends is read, for at most a second, before the close.
fn serve(stream: TcpStream, config: Arc<ServerConfig>) -> io::Result<()> {
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let conn = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, stream);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    tls.sock.set_read_timeout(None)?;
    hello_http::serve(&mut tls)?;
    tls.conn.send_close_notify();
    while tls.conn.wants_write() {
        tls.conn.write_tls(&mut tls.sock)?;
    }
    tls.sock.shutdown(Shutdown::Write)?;
    tls.sock.set_read_timeout(Some(DRAIN_TIME))?;
    let mut left = DRAIN_BYTES;
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = tls.sock.read(&mut buf) {
        left = left.saturating_sub(n);
        if left == 0 {
            break;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match cli::parse("https_hello", USAGE, parse_args) {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    let config = match tls_config(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("https_hello: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&args.addr, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("https_hello: {}: {e}", args.addr);
            ExitCode::FAILURE
        }
    }
}

fn run(addr: &str, config: Arc<ServerConfig>) -> io::Result<()> {
    let server = StreamServer::bind(addr, move |stream, _peer| {
        // Failed handshakes (a client that does not trust the
        // certificate) and dropped connections end here quietly.
        let _ = serve(stream, config.clone());
    })?;
    println!("listening on {}", server.local_addr()?);
    io::stdout().flush()?;
    server.serve_forever()
}
