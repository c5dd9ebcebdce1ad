//! Many HTTPS clients at once on one thread: each greenlet opens a green
//! `TcpStream`, wraps it in `rustls`'s blocking `StreamOwned` (pure Rust
//! TLS, no OpenSSL), completes the handshake and sends keep-alive
//! `GET`s; their waits park only their own greenlet.
//!
//! ```text
//! cargo run --release --example tls_client -- [--ca FILE | -k] [--clients N] [--requests M] ADDR
//! ```
//!
//! Try it against the `https_hello` example: with its self-signed
//! certificate made at start, `-k`; with `--cert cert.pem --key key.pem`,
//! `--ca cert.pem`. It prints a summary line and exits with 1 if a client
//! failed.

#[path = "support/cli.rs"]
mod cli;

use libev::green;
use libev::green::net::TcpStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme, StreamOwned,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: tls_client [--ca FILE | -k] [--name NAME] [--clients N] [--requests M] [--path PATH] ADDR

Opens N TLS connections at once (default 100) to ADDR (host:port), one
greenlet each on one thread, with rustls on green sockets; each sends M
keep-alive HTTP/1.1 GET requests (default 10) and reads the replies.
Prints a summary line; exits with 1 if a client failed.

  --ca FILE      trust the PEM certificates in FILE (say, the server's own)
  -k, --insecure accept any certificate (signatures are still checked),
                 as curl -k does
  --name NAME    the server name to ask for and check (default: ADDR's host)
  --clients N    connections at once (default 100)
  --requests M   requests per connection (default 10)
  --path PATH    the path to GET (default /)
  -h, --help     print this help
";

/// Each read and write of a client must make progress within this.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The most a response head may take.
const MAX_HEAD: usize = 64 * 1024;

/// How the client decides to trust the server.
enum Trust {
    Ca(String),
    Insecure,
}

/// What the command line asks for.
struct Args {
    addr: String,
    trust: Trust,
    name: Option<String>,
    clients: usize,
    requests: usize,
    path: String,
}

/// `Ok(None)` when the help was asked for.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let (mut addr, mut ca, mut insecure, mut name) = (None, None, false, None);
    let (mut clients, mut requests, mut path) = (100, 10, "/".to_owned());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--ca" => ca = Some(args.next().ok_or("--ca needs a file")?),
            "-k" | "--insecure" => insecure = true,
            "--name" => name = Some(args.next().ok_or("--name needs a name")?),
            "--clients" => clients = cli::number("--clients", args.next())?,
            "--requests" => requests = cli::number("--requests", args.next())?,
            "--path" => path = args.next().ok_or("--path needs a path")?,
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            a if addr.is_none() => addr = Some(a.to_owned()),
            extra => return Err(format!("unexpected argument {extra:?}")),
        }
    }
    let addr = addr.ok_or("no ADDR given")?;
    let trust = match (ca, insecure) {
        (Some(ca), false) => Trust::Ca(ca),
        (None, true) => Trust::Insecure,
        (Some(_), true) => return Err("--ca and -k exclude each other".to_owned()),
        (None, false) => {
            return Err("say whom to trust: --ca FILE, or -k to accept any certificate \
                 (this example has no system root store)"
                .to_owned());
        }
    };
    Ok(Some(Args { addr, trust, name, clients, requests, path }))
}

/// Accepts any certificate but still checks the handshake's signatures
/// with it, as `curl -k` does: the connection is encrypted, but to a
/// server nobody vouched for.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config(trust: &Trust) -> Result<Arc<ClientConfig>, String> {
    let mut config = match trust {
        Trust::Ca(file) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(file).map_err(|e| format!("{file}: {e}"))? {
                roots.add(cert.map_err(|e| format!("{file}: {e}"))?).map_err(|e| format!("{file}: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("{file}: no certificate in the file"));
            }
            ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Insecure => {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            ClientConfig::builder()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The host part of `host:port` (without an IPv6 address's brackets).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _port)| host);
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// What one client saw.
struct Outcome {
    /// The negotiated protocol version and cipher suite.
    tls: String,
    /// Responses by status code.
    statuses: BTreeMap<u16, usize>,
    first_body: Vec<u8>,
}

/// Reads one response with a `Content-Length` body from `tls`, keeping
/// what follows it in `buf`; returns its status and body.
fn read_response(tls: &mut impl Read, buf: &mut Vec<u8>) -> Result<(u16, Vec<u8>), String> {
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(buf) {
            Ok(httparse::Status::Complete(head)) => {
                let status = resp.code.unwrap_or(0);
                let length = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                    .ok_or("a response without Content-Length (this example reads only those)")?;
                while buf.len() < head + length {
                    let n = tls.read(&mut chunk).map_err(|e| format!("reading a body: {e}"))?;
                    if n == 0 {
                        return Err("the server closed in the middle of a body".to_owned());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[head..head + length].to_vec();
                buf.drain(..head + length);
                return Ok((status, body));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => return Err("a response head over 64 KiB".to_owned()),
            Err(e) => return Err(format!("a malformed response: {e}")),
        }
        let n = tls.read(&mut chunk).map_err(|e| format!("reading a response: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".to_owned());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One client: connect, handshake, `requests` requests, close_notify.
fn client(args: &Args, name: ServerName<'static>, config: Arc<ClientConfig>) -> Result<Outcome, String> {
    let sock = TcpStream::connect(args.addr.as_str()).map_err(|e| format!("connecting: {e}"))?;
    sock.set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| sock.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let conn = ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).map_err(|e| format!("handshake: {e}"))?;
    }
    let tls_name = format!(
        "{:?} / {:?}",
        tls.conn.protocol_version().ok_or("no protocol version after the handshake")?,
        tls.conn.negotiated_cipher_suite().ok_or("no cipher suite after the handshake")?.suite()
    );
    let host = args.name.as_deref().unwrap_or(host_of(&args.addr));
    let request = format!("GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tls_client\r\n\r\n", args.path);
    let mut outcome = Outcome { tls: tls_name, statuses: BTreeMap::new(), first_body: Vec::new() };
    let mut buf = Vec::new();
    for i in 0..args.requests {
        tls.write_all(request.as_bytes()).and_then(|()| tls.flush()).map_err(|e| format!("sending: {e}"))?;
        let (status, body) = read_response(&mut tls, &mut buf)?;
        *outcome.statuses.entry(status).or_default() += 1;
        if i == 0 {
            outcome.first_body = body;
        }
    }
    tls.conn.send_close_notify();
    while tls.conn.wants_write() {
        tls.conn.write_tls(&mut tls.sock).map_err(|e| format!("closing: {e}"))?;
    }
    Ok(outcome)
}

fn main() -> ExitCode {
    let args = match cli::parse("tls_client", USAGE, parse_args) {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    let name = args.name.clone().unwrap_or_else(|| host_of(&args.addr).to_owned());
    let name = match ServerName::try_from(name) {
        Ok(name) => name,
        Err(e) => {
            eprintln!("tls_client: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match tls_config(&args.trust) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tls_client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let args = Arc::new(args);
    let start = Instant::now();
    let clients: Vec<_> = (0..args.clients)
        .map(|_| {
            let (args, name, config) = (args.clone(), name.clone(), config.clone());
            green::spawn(move || client(&args, name, config))
        })
        .collect();
    let mut failed = 0;
    let mut statuses = BTreeMap::new();
    let (mut tls, mut first_body) = (None, None);
    for result in green::joinall(clients) {
        match result.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(outcome) => {
                for (status, n) in outcome.statuses {
                    *statuses.entry(status).or_insert(0) += n;
                }
                tls.get_or_insert(outcome.tls);
                first_body.get_or_insert(outcome.first_body);
            }
            Err(e) => {
                failed += 1;
                // The first few are enough to tell what went wrong.
                if failed <= 3 {
                    eprintln!("tls_client: a client failed: {e}");
                }
            }
        }
    }
    let responses: usize = statuses.values().sum();
    let statuses: Vec<String> = statuses.iter().map(|(status, n)| format!("{n} x {status}")).collect();
    println!(
        "{} clients x {} requests to {} over {} in {:.2} s: {responses} responses ({}), {failed} clients failed; first body: {:?}",
        args.clients,
        args.requests,
        args.addr,
        tls.as_deref().unwrap_or("no TLS session"),
        start.elapsed().as_secs_f64(),
        if statuses.is_empty() { "none".to_owned() } else { statuses.join(", ") },
        String::from_utf8_lossy(first_body.as_deref().unwrap_or_default()),
    );
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
