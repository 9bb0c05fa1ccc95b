//! Errors of this crate.

/// What went wrong talking to Kubernetes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemedyError {
    /// No usable client configuration.
    #[error("cannot configure the Kubernetes client from {source_name}: {detail}")]
    Config {
        /// Where the configuration came from (a kubeconfig path, or "in-cluster").
        source_name: String,
        /// What was wrong.
        detail: String,
    },
    /// An API request failed.
    #[error("Kubernetes API request failed ({what}): {source}")]
    Api {
        /// The request.
        what: String,
        /// The cause.
        source: kube::Error,
    },
}
