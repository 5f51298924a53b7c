//! The deterministic data generator (filled in by the bench work).
