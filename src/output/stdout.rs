//! Standard output: written so that a closed pipe is no error and a full disk is said once, and
//! coloured only where colour belongs.

use crate::output::exit::Abort;
use std::io::Write;

/// Writes to standard output. A closed pipe is not an error (the reader went away, as with
/// `| head`); any other failure (`>/dev/full`) is said on standard error. Never a panic: the exit
/// code of a cron job must not be lost to its output.
pub fn print(text: &str) -> Result<(), Abort> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "ec2snap: cannot write to standard output: {e}"
            );
            Err(Abort::Output)
        }
    }
}

/// Colour on standard output: a terminal, and the environment allows it.
pub fn colour() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
        && colour_allowed(
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
        )
}

/// Colour on a terminal unless `NO_COLOR` is set to something (no-color.org: set and empty keeps
/// colour) or `TERM=dumb`.
fn colour_allowed(no_color: Option<&std::ffi::OsStr>, term: Option<&std::ffi::OsStr>) -> bool {
    no_color.is_none_or(|v| v.is_empty()) && term.is_none_or(|t| t != "dumb")
}

#[cfg(test)]
mod tests {
    use super::colour_allowed;
    use std::ffi::OsStr;

    #[test]
    fn colour_follows_no_color_org_and_a_dumb_terminal() {
        let s = |v: &'static str| Some(OsStr::new(v));
        assert!(colour_allowed(None, s("xterm-256color")));
        // Set and empty keeps colour (no-color.org); any value turns it off.
        assert!(colour_allowed(s(""), s("xterm")));
        assert!(!colour_allowed(s("1"), s("xterm")));
        assert!(!colour_allowed(None, s("dumb")));
        assert!(colour_allowed(None, None));
    }
}
