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
