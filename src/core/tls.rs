//! The TLS crypto provider, chosen once for the process.
//!
//! rustls is linked with two providers (ring for kube and the add-on downloads, aws-lc-rs
//! through object_store), so it cannot choose one by itself and panics on the first TLS client
//! built without a choice. Every place that builds a TLS client calls `use_ring` first.

/// Make ring the process's rustls provider; a second call (or one already chosen) is a no-op.
pub fn use_ring() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error only means a provider is already installed, which is all that is needed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
