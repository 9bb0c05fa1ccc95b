//! `hc-cli completions` and `hc-cli man`: the command line described for shells and `man`,
//! generated from the same clap definition that parses it.

use clap::CommandFactory as _;

use crate::cli::{Cli, CompletionsArgs, ManArgs, Shell};
use crate::exit::{self, Context};

pub(crate) fn completions(args: CompletionsArgs) -> exit::Result {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "hc-cli", &mut script);
    // clap_complete's bash script spells the state of a subcommand of a hyphenated binary two
    // ways (`hc__cli__subcmd__probe` in the loop, `hc__subcmd__cli__subcmd__probe` in the
    // arms: clap-rs/clap#6421), so no subcommand's flags would complete. One spelling it is.
    let script = String::from_utf8_lossy(&script).replace("hc__subcmd__cli", "hc__cli");
    crate::output::Out::new().bytes(script.as_bytes())?;
    Ok(exit::HEALTHY)
}

pub(crate) fn man(args: ManArgs) -> exit::Result {
    let cmd = Cli::command();
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .and_then(|()| clap_mangen::generate_to(cmd, &dir))
                .map_err(|e| anyhow::anyhow!("--dir {}: {e}", dir.display()))
                .runtime()?;
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page).runtime()?;
            crate::output::Out::new().bytes(&page)?;
        }
    }
    Ok(exit::HEALTHY)
}
