//! The `multicloud-exporter` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = multicloud_exporter::cli::Cli::parse();
    multicloud_exporter::app::run(cli).await
}
