//! `hc-cli demo`: the tour of `hc_demo`, printed; the agent's own log lines go with it.

use std::io::Write;

use hc_demo::{Line, TourOptions};

use crate::cli::DemoArgs;
use crate::exit;

pub(crate) fn run(args: DemoArgs) -> exit::Result {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let colour = crate::output::colour_stdout();
    // The agent's lines only: the embedded server logs every query.
    let ours =
        tracing_subscriber::filter::Targets::new().with_target("hc_agent", tracing::Level::INFO);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stdout)
        .with_ansi(colour)
        .with_target(false)
        .without_time();
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(ours)
        .try_init();
    let mut opts = TourOptions::new();
    opts.interval = args.interval;
    opts.metrics_addr = args.metrics_addr;
    opts.netns = !args.no_netns;
    // A closed stdout (`hc-cli demo | head`) ends the output quietly, not with a panic.
    let say = |l: Line<'_>| {
        let mut out = std::io::stdout();
        let _ = match l {
            Line::Note(s) if colour => writeln!(out, "\x1b[1m[demo]\x1b[0m {s}"),
            Line::Note(s) => writeln!(out, "[demo] {s}"),
            Line::Plain(s) => writeln!(out, "{s}"),
        };
    };
    crate::block_on(hc_demo::tour(&opts, &say))?.map_err(exit::runtime)?;
    Ok(exit::HEALTHY)
}
