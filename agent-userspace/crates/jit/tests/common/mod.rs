#![allow(dead_code)] // each test binary uses a different subset

pub mod github;
pub mod moto;
pub mod proxy;
