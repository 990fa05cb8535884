//! `wellbeing forget --yes`: delete everything the assistant stores. Through the running instance
//! when there is one (it is the database's writer), else on the database directly.

use anyhow::{Context as _, bail};

use crate::embedded::client::{self, Target};
use crate::embedded::{self, DataDirArg, instance};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    data: DataDirArg,
    /// Confirm: without it nothing is deleted.
    #[arg(long)]
    yes: bool,
    /// Base URL of a running `wellbeing up` [default: the one in the data dir's instance file].
    #[arg(long, env = "WELLBEING_URL", value_name = "URL")]
    url: Option<String>,
    /// API token of that instance [default: from the instance file].
    #[arg(long, env = "WELLBEING_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    token: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let data_dir = args.data.resolve()?;
    if !args.yes {
        bail!(
            "refusing to delete everything in {} without --yes (export it first with `wellbeing export`)",
            data_dir.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("failed to start tokio")?;
    let deleted = runtime.block_on(async {
        match client::find(&data_dir, args.url.as_deref(), args.token.as_deref())? {
            Target::Running(api) => api.forget().await,
            Target::Direct => {
                let db = data_dir.join(wellbeing_assistant::store::DB_FILE);
                if !db.exists() {
                    return Ok(0);
                }
                let _lock = instance::acquire(&data_dir)?;
                let store = embedded::open_store(&data_dir)?;
                let assistant = embedded::assistant(store, embedded::persona_registry(), None);
                let report = assistant.forget_user(None).context("failed to delete the stored data")?;
                Ok(report.total() as u64)
            }
        }
    })?;
    println!("Deleted everything the assistant stored ({deleted} rows).");
    Ok(())
}
