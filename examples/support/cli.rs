//! The command line of the examples that take options: `-h`/`--help`
//! prints the usage and ends the program with success; a bad argument
//! prints the error and the usage and ends it with 2.
#![allow(dead_code, reason = "each example includes this module and uses the parts it needs")]

use std::process::ExitCode;

/// Parses this program's arguments with `parse`, which returns `Ok(None)`
/// when the help was asked for. `Err` holds what `main` returns then: 0
/// after printing `usage`, or 2 after printing `program: error` and
/// `usage` to standard error.
pub fn parse<A>(
    program: &str,
    usage: &str,
    parse: impl FnOnce(std::iter::Skip<std::env::Args>) -> Result<Option<A>, String>,
) -> Result<A, ExitCode> {
    match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => Ok(args),
        Ok(None) => {
            print!("{usage}");
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprint!("{program}: {e}\n\n{usage}");
            Err(ExitCode::from(2))
        }
    }
}

/// The number following option `flag`: `value`, the next argument.
pub fn number(flag: &str, value: Option<String>) -> Result<usize, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a number"))?;
    value.parse().map_err(|_| format!("{flag}: {value:?} is not a number"))
}

/// The default address the servers listen on.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8000";

/// For the programs whose one argument is an optional listen address
/// (default [`DEFAULT_ADDR`]): that address, or what `main` returns after
/// `--help` or a bad argument (see [`parse`]).
pub fn listen_addr(program: &str, usage: &str) -> Result<String, ExitCode> {
    parse(program, usage, |args| {
        let mut addr = None;
        for arg in args {
            match arg.as_str() {
                "-h" | "--help" => return Ok(None),
                a if a.starts_with('-') => return Err(format!("unknown option {a}")),
                _ if addr.is_some() => return Err(format!("unexpected argument {arg:?}")),
                _ => addr = Some(arg),
            }
        }
        Ok(Some(addr.unwrap_or_else(|| DEFAULT_ADDR.to_owned())))
    })
}

/// Reports that `what` failed with `error`, as `program: what: error` on
/// standard error, and gives the status to exit with (1).
pub fn fail(program: &str, what: impl std::fmt::Display, error: impl std::fmt::Display) -> ExitCode {
    eprintln!("{program}: {what}: {error}");
    ExitCode::FAILURE
}
