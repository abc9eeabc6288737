//! What `suture serve` prints once it listens: where senders should point.
//! The first line is what scripts and tests read to learn the address.

use std::io::Write;
use std::net::SocketAddr;

use domain::config::{Config, ForgeKind, SentryProject};
use store::Store;

/// Prints the address, the DSNs, the webhook URLs and the repositories.
pub(crate) fn announce(
    config: &Config,
    address: SocketAddr,
    projects: &[SentryProject],
    store: &Store,
) {
    let base = config
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let base = base.trim_end_matches('/');
    let host = base.split_once("://").map_or(base, |(_, rest)| rest);
    let scheme = base.split_once("://").map_or("http", |(scheme, _)| scheme);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "suture listening on http://{address}");
    for project in projects {
        let _ = writeln!(
            out,
            "  sentry dsn (project {}): {scheme}://{}@{host}/{}",
            project.id, project.public_key, project.id
        );
    }
    let _ = writeln!(out, "  sentry webhook:    {base}/webhooks/sentry");
    let _ = writeln!(out, "  pagerduty webhook: {base}/webhooks/pagerduty");
    let _ = writeln!(out, "  github webhook:    {base}/webhooks/github");
    let _ = writeln!(out, "  pages:             {base}/");
    let _ = writeln!(out, "  incidents:         {base}/api/incidents");
    let _ = writeln!(out, "  store:             {}", store.description());
    let _ = writeln!(out, "  workers:           {}", config.queue.workers);
    for repo in &config.repos {
        let target = match repo.forge {
            ForgeKind::Github => format!("github {}", repo.github_repo.as_deref().unwrap_or("?")),
            ForgeKind::Local => format!(
                "local forge {} (suture pr list)",
                crate::forges::local_remote(config, repo).display()
            ),
        };
        let _ = writeln!(out, "  repo {}: {} mode → {target}", repo.name, repo.mode);
    }
    let _ = out.flush();
}
