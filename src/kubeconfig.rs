//! `--kubeconfig` and `--context`: which cluster a subcommand talks to.

use std::path::PathBuf;

use kube::config::{Config, KubeConfigOptions, Kubeconfig};

/// The cluster a subcommand talks to. Without either flag: `$KUBECONFIG`, else `~/.kube/config`,
/// else the pod's service account, as `kubectl` does.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ClusterArgs {
    /// The kubeconfig file to use (default: $KUBECONFIG, else ~/.kube/config, else in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl ClusterArgs {
    /// A client of that cluster; an error names the file or context that did not do.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        if self.kubeconfig.is_none() && self.context.is_none() {
            return Ok(kube::Client::try_default().await?);
        }
        let options = KubeConfigOptions { context: self.context.clone(), ..KubeConfigOptions::default() };
        let config = match &self.kubeconfig {
            Some(path) => {
                let file =
                    Kubeconfig::read_from(path).map_err(|e| anyhow::anyhow!("--kubeconfig {}: {e}", path.display()))?;
                Config::from_custom_kubeconfig(file, &options).await
            }
            None => Config::from_kubeconfig(&options).await,
        }
        .map_err(|e| match &self.context {
            Some(context) => anyhow::anyhow!("--context {context}: {e}"),
            None => anyhow::anyhow!("{e}"),
        })?;
        Ok(kube::Client::try_from(config)?)
    }
}
