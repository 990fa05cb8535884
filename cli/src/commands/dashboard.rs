//! `wellbeing dashboard token`: print the dashboard's token from the data dir (creating it as the
//! assistant would on first start). In the cluster the image has no shell, so this is how the
//! token is read: `kubectl exec sts/<release>-assistant -- wellbeing dashboard token --data-dir /data`.

use anyhow::Context as _;

use crate::embedded::DataDirArg;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// Print the token that opens /dashboard (kept in the data dir as `dashboard-token`).
    Token(DataDirArg),
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let What::Token(data) = args.what;
    let dir = data.resolve()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create the data dir {}", dir.display()))?;
    let token =
        wellbeing_webhook::dashboard::load_or_create_token(&dir).context("failed to read the dashboard token")?;
    println!("{token}");
    Ok(())
}
