//! What every Apogee command-line tool (`apogee`, `apogee-perf`) shares: usage errors as one line, and log
//! output that suits where it goes (colour only on a terminal, `NO_COLOR` honoured, JSON for log shippers).
//!
//! Operational errors (an unreachable address, a missing file, a refused request) are each tool's own
//! `main`'s business: one line naming what failed and the address or path, then a non-zero exit, never a
//! panic.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

/// The exit code of a usage error (as clap's own).
pub const USAGE_EXIT: u8 = 2;

/// How log lines are written to stderr.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event (colour only on a terminal and without `NO_COLOR`).
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, fields (for log shippers).
    Json,
}

/// Whether text logs get ANSI colours: only on a terminal, and never when `NO_COLOR` is set to anything
/// but the empty string (<https://no-color.org>).
pub fn colour(stderr_is_terminal: bool, no_color: Option<OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the global log subscriber: `RUST_LOG` when set and valid, else `default_filter`.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ))
            .init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

/// A usage error as one line: `tool: what was wrong (try --help)`.
pub fn usage_line(tool: &str, e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let first = rendered
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("bad arguments");
    let what = first.strip_prefix("error: ").unwrap_or(first);
    format!("{tool}: {what} (try --help)")
}

/// Parses the command line. `--help` and `--version` print as usual and exit 0; a usage error prints
/// [`usage_line`] and returns the exit code to end with.
pub fn parse<T: Parser>(tool: &str) -> Result<T, ExitCode> {
    match T::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{}", usage_line(tool, &e));
            Err(ExitCode::from(USAGE_EXIT))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsString::new())));
        assert!(!colour(true, Some(OsString::from("1"))));
        assert!(!colour(false, None));
    }

    #[derive(Parser, Debug)]
    struct Demo {
        #[arg(long)]
        port: u16,
    }

    #[test]
    fn usage_errors_are_one_line() {
        for args in [
            &["demo", "--port", "x"][..],
            &["demo", "--bogus"],
            &["demo"],
        ] {
            let e = Demo::try_parse_from(args).unwrap_err();
            let line = usage_line("demo", &e);
            assert!(!line.contains('\n'), "{line}");
            assert!(
                line.starts_with("demo: ") && line.ends_with("(try --help)"),
                "{line}"
            );
        }
    }
}
