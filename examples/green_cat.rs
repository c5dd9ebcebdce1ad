//! `cat` on green threads: copies standard input to standard output
//! through `libev::green::io`, while another greenlet ticks every 10 ms.
//! Waiting for input parks only the copying greenlet, so the ticker runs
//! meanwhile; at the end the program reports on standard error how often.
//!
//! ```text
//! (echo one; sleep 1; echo two) | cargo run --example green_cat
//! cargo run --example green_cat < some_file > copy     # regular files: the blocking pool
//! ```
//!
//! The terminal or pipes it is given keep their blocking mode: the green
//! streams read and write through private non-blocking descriptions (see
//! the `libev::green::io` docs), so the shell and the other commands of a
//! pipeline see nothing change.

#[path = "support/cli.rs"]
mod cli;

use libev::green::{self, io};
use std::cell::Cell;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

/// Copies `input` to `output` until the end of input, writing what each
/// read returns at once (as `cat` does: a pipe or terminal gives what it
/// has). The large buffer matters when the streams are regular files,
/// where each call is a trip to the blocking pool.
fn copy(mut input: impl Read, mut output: impl Write) -> std::io::Result<u64> {
    let mut buf = vec![0; 64 * 1024];
    let mut total = 0;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        output.write_all(&buf[..n])?;
        total += n as u64;
    }
}

const USAGE: &str =
    "usage: green_cat < INPUT > OUTPUT\n  copies standard input to standard output on green threads\n";

fn main() -> ExitCode {
    if let Err(code) = cli::parse("green_cat", USAGE, |mut args| match args.next() {
        None => Ok(Some(())),
        Some(a) if a == "-h" || a == "--help" => Ok(None),
        Some(a) => Err(format!("unexpected argument {a:?}")),
    }) {
        return code;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cli::fail("green_cat", "copying", e),
    }
}

/// Copies standard input to standard output while a greenlet ticks.
fn run() -> std::io::Result<()> {
    let ticks = Rc::new(Cell::new(0u64));
    let ticker = green::spawn({
        let ticks = ticks.clone();
        move || {
            loop {
                green::sleep(Duration::from_millis(10));
                ticks.set(ticks.get() + 1);
            }
        }
    });
    let copied = copy(io::stdin().lock(), io::stdout().lock())?;
    ticker.kill();
    writeln!(io::stderr(), "copied {copied} bytes; the ticker ran {} times meanwhile", ticks.get())
}
