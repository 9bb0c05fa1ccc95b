//! One module per command; none imports another.

mod controller;
mod demo;
mod manual;
mod netns;
mod probe;
mod run;
mod status;
mod sweep;

use crate::cli::Command;
use crate::exit;

pub(crate) fn dispatch(command: Command) -> exit::Result {
    match command {
        Command::Probe(args) => probe::run(args),
        Command::Netns(crate::cli::NetnsCommand::List(args)) => netns::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Run(args) => run::run(*args),
        Command::Controller(args) => controller::run(*args),
        Command::Status(args) => status::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Completions(args) => manual::completions(args),
        Command::Man(args) => manual::man(args),
    }
}
