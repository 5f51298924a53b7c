//! `vibing2 bench`: synthetic data at scale and the before/after measurements.

pub mod seed;
