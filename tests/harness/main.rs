//! Tests of the harness itself, one module per purpose.

mod cli;
mod deviations;
mod matrix;
mod record;
mod report;
mod robustness;
mod transport;
