pub mod config;
pub mod demo;
