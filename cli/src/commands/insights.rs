//! `wellbeing insights weekly`: print this week's insight: the one sent on Sunday evening when it
//! was, else computed from the database now. It records nothing: the insight is recorded when it
//! is sent (by `wellbeing up`'s scheduler or the assistant service's goals loop), once a week, so
//! printing it midweek must not count as sending it. The persona's time zone and voice and the
//! goals come from the manifests folder; the LLM rephrases it when `WELLBEING_LLM_*` is
//! configured, with every number checked.

use std::path::PathBuf;

use anyhow::Context as _;
use chrono::Utc;
use wellbeing_assistant::insights;

use crate::embedded::{self, DataDirArg, manifests};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// This week's insight: counts and trends, goal progress, patterns, things to try.
    Weekly(WeeklyArgs),
}

#[derive(clap::Args, Debug)]
struct WeeklyArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// Whose insight [default: the user who checked in last].
    #[arg(long, env = "WELLBEING_USER")]
    user: Option<String>,
    /// Folder of Persona and Goal manifests [default: ./examples when present].
    #[arg(long, env = "WELLBEING_MANIFESTS", value_name = "DIR")]
    manifests: Option<PathBuf>,
    /// Print the computed facts as JSON instead of the text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let What::Weekly(args) = args.what;
    let data_dir = args.data.resolve()?;
    let db = data_dir.join(wellbeing_assistant::store::DB_FILE);
    anyhow::ensure!(db.exists(), "no database at {} yet: nothing to summarise", db.display());
    let store = wellbeing_assistant::Store::open(&db).context("failed to open the database")?;

    let set = match embedded::manifests_dir(args.manifests.as_deref()) {
        Some(dir) => {
            manifests::load_dir(&dir).with_context(|| format!("failed to load manifests from {}", dir.display()))?
        }
        None => manifests::ManifestSet::default(),
    };
    for e in &set.errors {
        eprintln!("warning: {e}");
    }
    let persona = match set.active_persona() {
        Some(p) => p.spec.clone(),
        None => embedded::persona_registry().active().spec().clone(),
    };
    let user = match args.user {
        Some(u) => u,
        None => wellbeing_webhook::dashboard::data::default_user(&store)
            .context("failed to read the users")?
            .unwrap_or_else(|| embedded::LOCAL_USER.to_string()),
    };
    let facts = insights::compute(&store, &user, &persona, &set.goals, Utc::now())
        .context("failed to compute the weekly insight")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&facts)?);
        return Ok(());
    }
    let sent = insights::recent(&store, &user, 1)
        .context("failed to read the sent insights")?
        .into_iter()
        .find(|i| i.week_start == facts.week_start);
    if let Some(sent) = sent {
        println!("{}", sent.text);
        eprintln!("(sent {}; showing the text as sent)", sent.created_at.format("%Y-%m-%d %H:%M UTC"));
        return Ok(());
    }
    let config = std::env::var_os("WELLBEING_LLM_CONFIG").map(std::path::PathBuf::from);
    let llm = embedded::llm_router(None, None, config.as_deref())?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("failed to start the runtime")?;
    let (text, _) = runtime.block_on(insights::phrase(&llm, &persona, &facts));
    println!("{text}");
    eprintln!("(not sent yet: this week's insight goes out on Sunday evening)");
    Ok(())
}
