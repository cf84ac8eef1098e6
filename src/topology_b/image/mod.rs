//! The suite's images without a registry (docs/images.md).
//!
//! - `rootfs`: what the suite image holds (the running binary, the libraries it links and their
//!   loader, a non-root user, `/tmp`, CA certificates), written as a reproducible tar.
//! - `build`: `appgear image build`, the tar imported through the Engine API with its
//!   entrypoint, user and labels; skipped when the same files are already there.
//! - `archive`: `appgear images save|load FILE`, every pinned image of a topology and profile in
//!   one archive, and the names an archive holds (for `cluster up` to load into kind).
//!
//! `APPGEAR_REGISTRY_MIRROR`'s rewrite of an image reference to its mirror, and `normalize`, are in
//! `crate::core::image_ref`: Topology A's pulls use them too.

pub mod archive;
pub mod build;
pub mod rootfs;
