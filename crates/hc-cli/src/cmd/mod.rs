//! One module per command; none imports another.

#[cfg(target_os = "linux")]
mod controller;
#[cfg(target_os = "linux")]
mod demo;
#[cfg(target_os = "linux")]
mod netns;
mod probe;
#[cfg(target_os = "linux")]
mod run;
#[cfg(target_os = "linux")]
mod status;
#[cfg(target_os = "linux")]
mod sweep;

use crate::cli::Command;
use crate::exit;

pub(crate) fn dispatch(command: Command) -> exit::Result {
    match command {
        Command::Probe(args) => probe::run(args),
        #[cfg(target_os = "linux")]
        Command::Netns(crate::cli::NetnsCommand::List(args)) => netns::run(args),
        #[cfg(target_os = "linux")]
        Command::Sweep(args) => sweep::run(args),
        #[cfg(target_os = "linux")]
        Command::Run(args) => run::run(*args),
        #[cfg(target_os = "linux")]
        Command::Controller(args) => controller::run(*args),
        #[cfg(target_os = "linux")]
        Command::Status(args) => status::run(args),
        #[cfg(target_os = "linux")]
        Command::Demo(args) => demo::run(args),
    }
}
