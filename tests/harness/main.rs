//! Tests of the harness itself, one module per purpose.

mod cli;
mod deviations;
mod faults;
mod matrix;
mod report;
mod robustness;
mod transport;
