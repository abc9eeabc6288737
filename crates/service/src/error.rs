//! Why the service could not start or stopped: its one error type. Every
//! message names what was being done; sources carry the cause (forge
//! errors boxed: they are large, and this error is returned on every path).

use std::path::PathBuf;

use forge::ForgeError;
use store::StoreError;

/// A failure of [`crate::run`] or of building a repository's forge.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The data directory cannot be created.
    #[error("creating the data directory {}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The generated DSN key cannot be made or kept.
    #[error("keeping the generated DSN key in {}", path.display())]
    DsnKey {
        /// Where it is kept.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store cannot be opened or migrated.
    #[error("opening the store {url}")]
    Store {
        /// The database URL, password redacted.
        url: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// A repository's `[[repos]]` entry cannot give it a forge.
    #[error("setting up the forge of repository {repo}: {reason}")]
    ForgeConfig {
        /// The repository's name.
        repo: String,
        /// What is missing or wrong.
        reason: &'static str,
    },
    /// A repository's forge cannot be set up.
    #[error("setting up the forge of repository {repo}")]
    Forge {
        /// The repository's name.
        repo: String,
        /// Why.
        #[source]
        source: Box<ForgeError>,
    },
    /// A repository's local forge (its bare repository) cannot be opened.
    #[error("opening the local forge at {}", path.display())]
    LocalForge {
        /// The bare repository.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<ForgeError>,
    },
    /// The Sentry or PagerDuty client cannot be built.
    #[error("setting up the {service} client")]
    Upstream {
        /// `Sentry` or `PagerDuty`.
        service: &'static str,
        /// Why.
        #[source]
        source: Box<ForgeError>,
    },
    /// The pages cannot be set up (no secret for their sessions).
    #[error("setting up the pages")]
    Pages(#[source] pages::PagesError),
    /// The HTTP listener cannot bind.
    #[error("listening on {address}")]
    Listen {
        /// The configured address.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
