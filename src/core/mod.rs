//! What every product shares. Nothing here imports a product.

pub mod error;
pub mod files;
pub mod names;
pub mod ports;
pub mod ui;
