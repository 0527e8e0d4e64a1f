//! Tests of the harness itself, one module per purpose.

mod cli;
mod credentials;
mod deviations;
mod matrix;
mod report;
mod robustness;
mod transport;
