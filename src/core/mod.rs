//! What every product shares. Nothing here imports a product.

pub mod digest;
pub mod docker;
pub mod error;
pub mod files;
pub mod image_ref;
pub mod names;
pub mod owned_files;
pub mod ports;
pub mod quote;
pub mod redis;
pub mod tls;
pub mod ui;
pub mod yaml;
