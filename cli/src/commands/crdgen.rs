//! `wellbeing crdgen`: regenerate the CRD YAML checked into the chart.

use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Directory to write the CRD files into.
    #[arg(long, default_value = "charts/wellbeing/crds")]
    out: PathBuf,
    /// Print the CRDs to stdout instead of writing files.
    #[arg(long)]
    stdout: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    for (file, yaml) in wellbeing_crds::crd_files() {
        if args.stdout {
            print!("---\n{yaml}");
            continue;
        }
        std::fs::create_dir_all(&args.out).with_context(|| format!("failed to create {}", args.out.display()))?;
        let path = args.out.join(&file);
        std::fs::write(&path, yaml).with_context(|| format!("failed to write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
