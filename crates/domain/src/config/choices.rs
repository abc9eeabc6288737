//! The settings whose value is one of a few names, as types: each name is
//! declared once here, and serde, `validate`'s messages and the README
//! table all read it from the same declaration.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Declares a closed set of names: the enum (serde by name), its default,
/// `NAMES`, `as_str` and `Display`.
macro_rules! choice {
    (
        $(#[doc = $doc:literal])*
        $name:ident (default $default:ident) {
            $( $(#[doc = $vdoc:literal])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(
                $(#[doc = $vdoc])*
                #[serde(rename = $text)]
                $variant,
            )+
        }

        impl $name {
            /// Every accepted name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The name as written in `suture.toml`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value named `text`.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl Default for $name {
            fn default() -> $name {
                $name::$default
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

choice! {
    /// What suture does with a repository's incidents.
    Mode (default Pr) {
        /// Diagnose only.
        Observe = "observe",
        /// Heal, then a tracking issue with the proposed diff.
        Suggest = "suggest",
        /// Heal, then a pull request for a human to review.
        Pr = "pr",
    }
}

choice! {
    /// Where a repository's fixes are proposed.
    ForgeKind (default Local) {
        /// A bare repository and records in the store (`suture pr …`).
        Local = "local",
        /// GitHub, through an App or a token.
        Github = "github",
    }
}

choice! {
    /// Where a repository's tests run.
    SandboxKind (default Bubblewrap) {
        /// Bubblewrap: no network, read-only host, private `/tmp`.
        Bubblewrap = "bubblewrap",
        /// A docker container without network.
        Docker = "docker",
        /// A plain process: no isolation.
        Process = "process",
    }
}

choice! {
    /// Where a signal came from: the `source` of stored signals and
    /// incidents.
    SignalSource (default SentrySdk) {
        /// An event sent by a Sentry SDK to suture's DSN.
        SentrySdk = "sentry_sdk",
        /// A Sentry integration webhook.
        SentryWebhook = "sentry_webhook",
        /// A PagerDuty v3 webhook.
        Pagerduty = "pagerduty",
        /// A GitHub webhook delivery.
        Github = "github",
        /// A review action on the local forge (`suture pr …`).
        LocalForge = "local_forge",
    }
}

choice! {
    /// What makes an incident worth a healing round on its own
    /// (`repos[].heal_on`); a human can start one for any incident.
    Trigger (default NewRelease) {
        /// First seen on the project's newest release.
        NewRelease = "new_release",
        /// Back after its fix held.
        Regression = "regression",
        /// A burst over its own baseline rate.
        Spike = "spike",
    }
}

choice! {
    /// How a recovery action (`[[actions]]`) runs once it matches.
    ActionMode (default Approve) {
        /// At once, within its limits.
        Auto = "auto",
        /// After `/suture approve` from a user with write access on the
        /// tracking issue, or `suture action approve ID`.
        Approve = "approve",
        /// Never: what it would do is recorded.
        DryRun = "dry_run",
    }
}

choice! {
    /// Which incidents a recovery action matches, by where they came from.
    ActionSource (default Pagerduty) {
        /// PagerDuty incidents.
        Pagerduty = "pagerduty",
        /// Sentry-sourced incidents (SDK events and integration webhooks).
        Sentry = "sentry",
    }
}
