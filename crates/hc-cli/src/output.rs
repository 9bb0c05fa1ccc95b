//! Printing: the one colour decision, `OK`/`FAIL`, and stdout that ends quietly when the reader
//! goes away (`hc-cli sweep | head`). What a report says comes from the libraries (`Display`,
//! `Serialize`); this module only lays it out.

use std::fmt::Display;
use std::io::{IsTerminal, Write};

use crate::exit::{self, Context};

/// `--color always` (`Some(true)`) or `never` (`Some(false)`); unset for `auto`.
static CHOICE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Records `--color`, once, before anything is printed.
pub(crate) fn set_colour_choice(choice: crate::cli::ColorChoice) {
    use crate::cli::ColorChoice;
    if choice != ColorChoice::Auto {
        let _ = CHOICE.set(choice == ColorChoice::Always);
    }
}

/// Whether to colour a stream: as `--color always|never` says; with `auto`, never when
/// `NO_COLOR` is set (non-empty), always when `CLICOLOR_FORCE` is (and not `0`), else only on
/// a terminal.
pub(crate) fn colour(is_terminal: bool) -> bool {
    if let Some(c) = CHOICE.get() {
        return *c;
    }
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty() && v != "0");
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    set("CLICOLOR_FORCE") || is_terminal
}

/// Whether to colour stdout.
pub(crate) fn colour_stdout() -> bool {
    colour(std::io::stdout().is_terminal())
}

/// `OK  ` (green) or `FAIL` (red), four columns wide.
pub(crate) fn status_word(healthy: bool, colour: bool) -> String {
    let (word, code) = if healthy {
        ("OK  ", "32")
    } else {
        ("FAIL", "31")
    };
    if colour {
        format!("\x1b[{code}m{word}\x1b[0m")
    } else {
        word.to_owned()
    }
}

/// Standard output for a command's report. A closed pipe stops the output without an error;
/// any other write error is a run-time error.
pub(crate) struct Out {
    w: std::io::StdoutLock<'static>,
    closed: bool,
    pub(crate) colour: bool,
}

impl Out {
    pub(crate) fn new() -> Out {
        Out {
            w: std::io::stdout().lock(),
            closed: false,
            colour: colour_stdout(),
        }
    }

    fn write(
        &mut self,
        f: impl FnOnce(&mut std::io::StdoutLock<'static>) -> std::io::Result<()>,
    ) -> exit::Result<()> {
        if self.closed {
            return Ok(());
        }
        match f(&mut self.w).and_then(|()| self.w.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            r => r.runtime(),
        }
    }

    /// One line.
    pub(crate) fn line(&mut self, s: impl Display) -> exit::Result<()> {
        self.write(|w| writeln!(w, "{s}"))
    }

    /// A report line: `OK  ` or `FAIL`, then `s`.
    pub(crate) fn status(&mut self, healthy: bool, s: impl Display) -> exit::Result<()> {
        let word = status_word(healthy, self.colour);
        self.line(format_args!("{word} {s}"))
    }

    /// Bytes as they are (a generated script or page).
    pub(crate) fn bytes(&mut self, b: &[u8]) -> exit::Result<()> {
        self.write(|w| w.write_all(b))
    }

    /// Pretty JSON, then a newline.
    pub(crate) fn json(&mut self, v: &impl serde::Serialize) -> exit::Result<()> {
        self.write(|w| {
            serde_json::to_writer_pretty(&mut *w, v)?;
            writeln!(w)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_line_up() {
        assert_eq!(status_word(true, false), "OK  ");
        assert_eq!(status_word(false, false), "FAIL");
        assert_eq!(status_word(true, true), "\x1b[32mOK  \x1b[0m");
    }
}
