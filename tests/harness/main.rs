//! Tests of the harness itself, one module per purpose.

mod aws;
mod cli;
mod credentials;
mod deviations;
mod faults;
mod isolation;
mod matrix;
mod patience;
mod record;
mod report;
mod robustness;
mod transport;
